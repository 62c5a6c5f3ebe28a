// The run page's enhancement: the pinned BPMN drawn by bpmn-js with each element's state marked,
// and each decision's table drawn by dmn-js with its matched rules highlighted. The page reads
// without it: the same facts are server-rendered tables. Data comes from the page's JSON block
// #run-viewers (never an inline script: the pages' Content-Security-Policy allows none).
(function () {
  "use strict";

  function readData() {
    var block = document.getElementById("run-viewers");
    if (!block) { return null; }
    try { return JSON.parse(block.textContent); } catch (e) { return null; }
  }

  function say(container, text) {
    var p = document.createElement("p");
    p.className = "tg-viewer-error";
    p.textContent = text;
    container.appendChild(p);
    container.setAttribute("data-viewer", "failed");
  }

  function drawDiagram(data) {
    var container = document.getElementById("bpmn-diagram");
    if (!container || !data.bpmn) { return; }
    if (typeof window.BpmnJS !== "function") { say(container, "The diagram viewer did not load."); return; }
    var viewer = new window.BpmnJS({ container: container });
    viewer.importXML(data.bpmn).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      Object.keys(data.elements).forEach(function (id) {
        if (registry.get(id)) { canvas.addMarker(id, "tg-" + data.elements[id]); }
      });
      canvas.zoom("fit-viewport");
      container.setAttribute("data-viewer", "ready");
    }).catch(function (err) {
      say(container, "The diagram could not be drawn: " + (err && err.message ? err.message : err));
    });
  }

  function highlight(container, rules) {
    rules.forEach(function (rule) {
      var cells = container.querySelectorAll("[data-row-id]");
      Array.prototype.forEach.call(cells, function (cell) {
        if (cell.getAttribute("data-row-id") !== rule) { return; }
        cell.classList.add("tg-matched");
        if (cell.parentNode && cell.parentNode.tagName === "TR") { cell.parentNode.classList.add("tg-matched"); }
      });
    });
  }

  function drawTable(container, xml, decision, rules) {
    if (typeof window.DmnJS !== "function") { say(container, "The decision table viewer did not load."); return; }
    var viewer = new window.DmnJS({ container: container });  // the viewer: nothing is editable
    viewer.importXML(xml).then(function () {
      var view = viewer.getViews().filter(function (v) {
        return v.type === "decisionTable" && v.element && v.element.id === decision;
      })[0];
      if (!view) { say(container, "Decision " + decision + " has no table to draw."); return null; }
      return viewer.open(view);
    }).then(function (opened) {
      if (opened === null) { return; }
      highlight(container, rules);
      container.setAttribute("data-viewer", "ready");
      // The server-rendered rules say the same: hide them once the viewer shows the table.
      var number = container.getAttribute("data-number");
      var fallback = document.getElementById("decision-" + number + "-rules");
      if (fallback) { fallback.classList.add("tg-replaced"); }
    }).catch(function (err) {
      say(container, "The decision table could not be drawn: " + (err && err.message ? err.message : err));
    });
  }

  function drawTables(data) {
    var panels = document.querySelectorAll(".tg-dmn[data-decision]");
    Array.prototype.forEach.call(panels, function (container) {
      var decision = container.getAttribute("data-decision");
      var number = Number(container.getAttribute("data-number"));
      var xml = data.tables[decision];
      var item = data.decisions.filter(function (d) { return d.number === number; })[0];
      if (xml && item) { drawTable(container, xml, decision, item.matched_rules); }
    });
  }

  function start() {
    var data = readData();
    if (!data) { return; }
    drawDiagram(data);
    drawTables(data);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
