// tiergate's web pages: small enhancements only. Every page works without this script.
"use strict";

// Lists in forms: an "Add a row" button, so another item needs no round trip (without the script,
// saving the form shows one more empty row).
function addRowButtons() {
  for (const list of document.querySelectorAll("fieldset.list[data-name]")) {
    const name = list.dataset.name;
    const max = Number(list.dataset.max || 50);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "add-row";
    button.textContent = "Add a row";
    button.addEventListener("click", () => {
      const rows = list.querySelectorAll(":scope > .row");
      if (rows.length === 0 || rows.length >= max) return;
      const last = rows[rows.length - 1];
      const numbers = Array.from(rows, (row) => Number(row.dataset.row.slice(name.length + 1)));
      const next = Math.max(...numbers) + 1;
      const from = `${name}.${last.dataset.row.slice(name.length + 1)}`;
      const to = `${name}.${next}`;
      const idOf = (text) => "f-" + text.replace(/[^A-Za-z0-9_-]/g, "-");
      const copy = last.cloneNode(true);
      copy.dataset.row = to;
      for (const element of copy.querySelectorAll("*")) {
        for (const attribute of ["name", "id", "for", "aria-describedby", "data-field"]) {
          const value = element.getAttribute(attribute);
          if (value === null) continue;
          const renamed = attribute === "name" || attribute === "data-field"
            ? value.split(from).join(to) : value.split(idOf(from)).join(idOf(to));
          element.setAttribute(attribute, renamed);
        }
        if (element.matches(".field-error")) element.remove();
        element.classList.remove("has-error");
        element.removeAttribute("aria-invalid");
        if (element.matches("input[type=checkbox]")) element.checked = false;
        else if (element.matches("input, textarea")) element.value = "";
        else if (element.matches("select")) element.selectedIndex = 0;
      }
      copy.classList.remove("has-error");
      const legend = copy.querySelector("legend");
      if (legend && legend.firstChild) legend.firstChild.textContent = legend.firstChild.textContent.replace(/\d+\s*$/, String(rows.length + 1));
      last.after(copy);
      const first = copy.querySelector("input, select, textarea");
      if (first) first.focus();
    });
    list.appendChild(button);
  }
}

document.addEventListener("DOMContentLoaded", addRowButtons);
