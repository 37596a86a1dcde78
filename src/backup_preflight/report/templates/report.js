"use strict";
/* Filters for the per-VM view. Plain DOM, no network, no innerHTML: text stays text. */
(function () {
  var form = document.getElementById("filters");
  if (!form) { return; }
  var vms = Array.prototype.slice.call(document.querySelectorAll("#vm-list article.vm"));
  var cards = vms.map(function (vm) {
    return {
      el: vm,
      sub: vm.getAttribute("data-sub"),
      rg: vm.getAttribute("data-rg"),
      text: null,
      rows: Array.prototype.slice.call(vm.querySelectorAll("li.finding")).map(function (li) {
        return {
          el: li,
          status: li.getAttribute("data-status"),
          severity: li.getAttribute("data-severity"),
          cause: li.getAttribute("data-cause"),
          baseline: li.getAttribute("data-baseline"),
          text: null
        };
      })
    };
  });
  var byId = function (id) { return document.getElementById(id); };
  var shown = byId("shown");
  var noMatch = byId("no-match");
  var timer = null;

  function value(id) { var el = byId(id); return el ? el.value : ""; }

  function apply() {
    var statuses = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[name=status]"), function (box) {
      statuses[box.value] = box.checked;
    });
    var q = byId("q").value.trim().toLowerCase();
    var severity = value("f-severity"), cause = value("f-cause"), sub = value("f-sub"), rg = value("f-rg");
    var newOnly = byId("f-new") ? byId("f-new").checked : false;
    var vmCount = 0, rowCount = 0;
    cards.forEach(function (card) {
      var cardOk = (!sub || card.sub === sub) && (!rg || card.rg === rg);
      if (cardOk && q && card.text === null) {
        var header = card.el.querySelector("header");
        card.text = header ? header.textContent.toLowerCase() : "";
      }
      var headerHit = q && cardOk ? card.text.indexOf(q) >= 0 : true;
      var visible = 0;
      card.rows.forEach(function (row) {
        var ok = cardOk && statuses[row.status] !== false && (!severity || row.severity === severity) &&
          (!cause || row.cause === cause) && (!newOnly || row.baseline === "new");
        if (ok && q && !headerHit) {
          if (row.text === null) { row.text = row.el.textContent.toLowerCase(); }
          ok = row.text.indexOf(q) >= 0;
        }
        row.el.hidden = !ok;
        if (ok) { visible += 1; }
      });
      card.el.hidden = visible === 0;
      if (visible) { vmCount += 1; rowCount += visible; }
    });
    shown.textContent = vmCount + " VMs · " + rowCount + " findings";
    if (noMatch) { noMatch.hidden = vmCount !== 0 || cards.length === 0; }
  }

  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  byId("q").addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(apply, 150);
  });
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
}());
