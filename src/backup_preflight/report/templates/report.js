"use strict";
/* The VM list: pages, sorts, filters, searches and opens VMs (#vm=<resource id>) from the JSON index
   in #report-data. Plain DOM, no network, no innerHTML: text from Azure stays text. */
(function () {
  var island = document.getElementById("report-data");
  var form = document.getElementById("filters");
  if (!island || !form) { return; }
  var started = performance.now();
  var ix = JSON.parse(island.textContent).index;
  var PAGE = 50;
  var STATUS = {f: "fail", e: "error", u: "unknown", x: "exempt", p: "pass", "-": "notApplicable"};
  var RANK = "feuxp-";
  var byId = function (id) { return document.getElementById(id); };
  var table = byId("vm-table"), tbody = byId("vm-rows"), detail = byId("vm-detail");
  var tagset = function (i) { return i >= 0 ? ix.tagsets[i] : []; };
  var vms = ix.vms.map(function (row, order) {
    var where = ix.prefixes[row[1]], s = where[1];
    var worst = "-";
    for (var i = 0; i < row[2].length; i += 1) {
      if (RANK.indexOf(row[2][i]) < RANK.indexOf(worst)) { worst = row[2][i]; }
    }
    var last = row[0], own = -1;  // optional tail: the id's last segment (string), the VM's tag set (number)
    for (var k = 4; k < row.length; k += 1) {
      if (typeof row[k] === "string") { last = row[k]; } else { own = row[k]; }
    }
    var sname = ix.subNames[s];
    return {order: order, name: row[0], lname: row[0].toLowerCase(), id: where[0] + last,
      sub: ix.subs[s], sname: sname, subKey: (sname || ix.subs[s]).toLowerCase(), rg: where[2],
      tags: tagset(own), rgTags: tagset(where[3]), subTags: tagset(ix.subTags[s]),
      causes: row[2], findings: row[3], worst: worst, hay: null};
  });
  var byKey = null, current = [], page = 0, group = -1, timer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function value(id) { var node = byId(id); return node ? node.value : ""; }
  function allTags(vm) { return vm.tags.concat(vm.rgTags, vm.subTags); }
  function hasTag(vm, want) {
    var eq = want.indexOf("=");
    var key = (eq < 0 ? want : want.slice(0, eq)).trim(), val = eq < 0 ? null : want.slice(eq + 1).trim();
    return allTags(vm).some(function (t) {
      return t[0].toLowerCase() === key && (val === null || t[1].toLowerCase() === val);
    });
  }
  function hay(vm) {
    if (vm.hay === null) {
      var parts = [vm.lname, vm.id.toLowerCase(), vm.sname.toLowerCase()];
      allTags(vm).forEach(function (t) { parts.push((t[0] + "=" + t[1]).toLowerCase()); });
      vm.findings.forEach(function (f) { parts.push(ix.text[f[2]].toLowerCase()); });
      vm.hay = parts.join("\n");
    }
    return vm.hay;
  }
  function inGroup(vm, g) {
    var hit = false;
    for (var i = 0; i < vm.findings.length; i += 1) {
      var f = vm.findings[i];
      if (f[1] !== "u" && f[1] !== "p") { return false; }
      if (f[0] === g[0] && f[2] === g[1]) { hit = true; }
    }
    return hit;
  }

  function apply() {
    var t0 = performance.now();
    var statuses = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[name=status]"), function (box) {
      statuses[box.value] = box.checked;
    });
    var q = byId("q").value.trim().toLowerCase();
    var severity = value("f-severity"), sub = value("f-sub"), rg = value("f-rg");
    var tag = value("f-tag").trim().toLowerCase();
    var cause = ix.causes.indexOf(value("f-cause"));
    var newOnly = byId("f-new") ? byId("f-new").checked : false;
    var g = group >= 0 ? ix.groups[group] : null;
    current = vms.filter(function (vm) {
      var worst = STATUS[vm.worst === "-" ? "p" : vm.worst];
      if (!statuses[worst] || (sub && vm.sub !== sub) || (rg && vm.rg !== rg)) { return false; }
      if (cause >= 0 && "feux".indexOf(vm.causes[cause]) < 0) { return false; }
      if (severity && !vm.findings.some(function (f) {
        return (f[1] === "f" || f[1] === "e") && ix.policies[f[0]].severity === severity;
      })) { return false; }
      if (newOnly && !vm.findings.some(function (f) { return f[4] && f[4].baseline === "new"; })) { return false; }
      if (g && !inGroup(vm, g)) { return false; }
      if (tag && !hasTag(vm, tag)) { return false; }
      return !q || hay(vm).indexOf(q) >= 0;
    });
    sortRows();
    page = 0;
    render();
    table.setAttribute("data-apply-ms", (performance.now() - t0).toFixed(1));  // read by benchmarks/report_bench.py
    table.setAttribute("data-q", q);
    table.setAttribute("data-tag", tag);
  }

  function sortRows() {
    var key = value("sort");
    var field = {name: "lname", rg: "rg", sub: "subKey"}[key];
    current.sort(function (a, b) {
      if (field && a[field] !== b[field]) { return a[field] < b[field] ? -1 : 1; }
      if (field && a.lname !== b.lname) { return a.lname < b.lname ? -1 : 1; }
      return a.order - b.order;
    });
  }

  function counts(vm) {
    var n = {};
    vm.findings.forEach(function (f) { n[f[1]] = (n[f[1]] || 0) + 1; });
    return ["f", "e", "u", "x"].filter(function (s) { return n[s]; }).map(function (s) {
      return n[s] + " " + STATUS[s];
    }).join(" · ");
  }

  function causeCell(vm, i) {
    var letter = vm.causes[i];
    var span = el("span", "st st-" + (letter === "-" ? "n" : letter), letter);
    span.title = ix.causes[i] + ": " + STATUS[letter];
    return span;
  }

  function subCell(vm) {
    var td = el("td", "small sub");
    if (vm.sname) {
      td.appendChild(el("span", "sname", vm.sname));
      td.appendChild(document.createTextNode(" "));
    }
    td.appendChild(el("span", "guid", vm.sub));
    return td;
  }

  function tagList(vm) {
    var box = el("dl", "vtags");
    [["VM tags", vm.tags], ["resource group tags", vm.rgTags], ["subscription tags", vm.subTags]].forEach(function (k) {
      if (!k[1].length) { return; }
      box.appendChild(el("dt", "", k[0]));
      var dd = el("dd");
      k[1].forEach(function (t) { dd.appendChild(el("span", "tag", t[0] + "=" + t[1])); });
      box.appendChild(dd);
    });
    return box.firstChild ? box : null;
  }

  function render() {
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    var pages = Math.max(1, Math.ceil(current.length / PAGE));
    page = Math.min(page, pages - 1);
    current.slice(page * PAGE, (page + 1) * PAGE).forEach(function (vm) {
      var tr = el("tr", "vmrow w-" + STATUS[vm.worst]);
      tr.setAttribute("data-id", vm.id);
      var link = el("a", "", vm.name);
      link.href = "#vm=" + encodeURIComponent(vm.id);
      var name = el("td");
      name.appendChild(link);
      tr.appendChild(name);
      tr.appendChild(el("td", "", vm.rg));
      tr.appendChild(subCell(vm));
      var tags = vm.tags.map(function (t) { return t[0] + "=" + t[1]; }).join(" · ");
      var tagCell = el("td", "small tags", tags);
      tagCell.title = tags;
      tr.appendChild(tagCell);
      for (var i = 0; i < ix.causes.length; i += 1) {
        var td = el("td", "cause");
        td.appendChild(causeCell(vm, i));
        tr.appendChild(td);
      }
      tr.appendChild(el("td", "num small", counts(vm)));
      tbody.appendChild(tr);
    });
    byId("shown").textContent = current.length + " of " + vms.length + " VMs";
    byId("page-label").textContent = current.length ?
      (page * PAGE + 1) + "–" + Math.min((page + 1) * PAGE, current.length) + " of " + current.length +
      " (page " + (page + 1) + " of " + pages + ")" : "";
    byId("prev").disabled = page === 0;
    byId("next").disabled = page >= pages - 1;
    byId("no-match").hidden = current.length !== 0;
    if (!vms.length) { byId("no-match").textContent = "No VM was evaluated."; }
  }

  function showVm(id) {
    if (byKey === null) {
      byKey = {};
      vms.forEach(function (vm) { byKey[vm.id.toLowerCase()] = vm; });
    }
    var vm = byKey[id.toLowerCase()];
    while (detail.firstChild) { detail.removeChild(detail.firstChild); }
    detail.hidden = false;
    if (!vm) {
      detail.appendChild(el("p", "alert-inline", "No VM with the id " + id + " is in this report."));
      return;
    }
    var card = el("article", "vm vm-" + STATUS[vm.worst]);
    var head = el("header");
    head.appendChild(el("h3", "", vm.name));
    head.appendChild(el("span", "where", vm.rg + " · " + (vm.sname ? vm.sname + " (" + vm.sub + ")" : vm.sub)));
    var close = el("a", "close", "close ×");
    close.href = "#vms";
    head.appendChild(close);
    head.appendChild(el("div", "rid", vm.id));
    card.appendChild(head);
    var tagBox = tagList(vm);
    if (tagBox) { card.appendChild(tagBox); }
    var causes = el("p", "vcauses");
    for (var i = 0; i < ix.causes.length; i += 1) {
      var c = el("span", "vcause");
      c.appendChild(causeCell(vm, i));
      c.appendChild(document.createTextNode(" " + ix.causes[i]));
      causes.appendChild(c);
    }
    card.appendChild(causes);
    var job = ix.jobs && ix.jobs[String(vm.order)];
    if (job) { card.appendChild(lastJob(job)); }
    if (!vm.findings.some(function (f) { return f[1] !== "p"; })) {
      card.appendChild(el("p", "good", "Nothing needs attention on this VM."));
    }
    var list = el("ul", "findings");
    vm.findings.forEach(function (f) { list.appendChild(finding(f)); });
    card.appendChild(list);
    detail.appendChild(card);
    detail.scrollIntoView();
  }

  function lastJob(job) {
    var box = el("section", "lastjob");
    box.appendChild(el("h4", "", "Last failed backup job"));
    box.appendChild(el("p", "jobhead", job.head));
    var list = el("ul", "jobcauses");
    if (!job.causes.length) { list.appendChild(el("li", "", "It points at no precondition this tool checks.")); }
    job.causes.forEach(function (c) {
      var li = el("li", "jobcause jc-" + c[1]);
      li.appendChild(el("strong", "", c[0]));
      li.appendChild(document.createTextNode(" – " + c[1] + (c[2].length ? ": " : "")));
      c[2].forEach(function (p, i) {
        var a = el("a", "", ix.policies[p[0]].id + " " + STATUS[p[1]]);
        a.href = "#policy-" + ix.policies[p[0]].id;
        if (i) { li.appendChild(document.createTextNode(", ")); }
        li.appendChild(a);
      });
      list.appendChild(li);
    });
    box.appendChild(list);
    var note = el("p", "jobnote", job.note + " ");
    if (job.ref) {
      var ref = el("a", "", "Microsoft Learn");
      ref.href = job.ref;
      note.appendChild(ref);
    }
    box.appendChild(note);
    if (job.recs.length) {
      var recs = el("ul", "jobrecs");
      job.recs.forEach(function (r) { recs.appendChild(el("li", "", r)); });
      box.appendChild(recs);
    }
    return box;
  }

  function finding(f) {
    var p = ix.policies[f[0]], status = STATUS[f[1]], extras = f[4] || {};
    var li = el("li", "finding");
    li.setAttribute("data-status", status);
    li.setAttribute("data-policy", p.id);
    var head = el("div", "fhead");
    head.appendChild(el("span", "badge s-" + status, status));
    head.appendChild(el("span", "sev sev-" + p.severity, p.severity));
    if (extras.baseline) { head.appendChild(el("span", "bl bl-" + extras.baseline, extras.baseline)); }
    var pol = el("a");
    pol.href = "#policy-" + p.id;
    pol.appendChild(el("code", "", p.id));
    head.appendChild(pol);
    head.appendChild(el("span", "ptitle", p.title));
    head.appendChild(el("span", "small", "(" + p.cause + ")"));
    li.appendChild(head);
    if (extras.note) { li.appendChild(el("p", "exempt-note", extras.note)); }
    if (extras.expired) { li.appendChild(el("p", "expired-note", extras.expired)); }
    if (ix.text[f[2]]) { li.appendChild(el("p", "msg", ix.text[f[2]])); }
    if (f[3].length) {
      var ev = el("ul", "evidence");
      f[3].forEach(function (t) { ev.appendChild(el("li", "", ix.text[t])); });
      li.appendChild(ev);
    }
    var fix = el("p", "fix");
    fix.appendChild(el("strong", "", "Fix: "));
    fix.appendChild(document.createTextNode(p.fix));
    p.refs.forEach(function (r) {
      fix.appendChild(document.createTextNode(" · "));
      var a = el("a", "", r[0]);
      a.href = r[1];
      a.rel = "noreferrer noopener";
      fix.appendChild(a);
    });
    if (f[1] !== "p") { li.appendChild(fix); }  // a pass is listed for what it assumes, not for a fix
    return li;
  }

  function route() {
    var m = /^#vm=(.*)$/.exec(location.hash);
    if (m) {
      showVm(decodeURIComponent(m[1]));
    } else {
      detail.hidden = true;
    }
  }

  form.addEventListener("change", function (event) {
    // the search box applies on input; its change event (on blur) would rebuild the rows under a click
    if (event.target.id !== "q" && event.target.id !== "f-tag") { apply(); }
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  ["q", "f-tag"].forEach(function (id) {
    byId(id).addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(apply, 100);
    });
  });
  byId("prev").addEventListener("click", function () { page -= 1; render(); });
  byId("next").addEventListener("click", function () { page += 1; render(); });
  Array.prototype.forEach.call(document.querySelectorAll("button.group"), function (button) {
    button.addEventListener("click", function () {
      group = Number(button.getAttribute("data-group"));
      byId("group-label").textContent = ix.text[ix.groups[group][1]];
      byId("group-filter").hidden = false;
      apply();
      byId("vms").scrollIntoView();
    });
  });
  byId("group-clear").addEventListener("click", function () {
    group = -1;
    byId("group-filter").hidden = true;
    apply();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
  current = vms.slice();
  render();
  route();
  (function warm(from) {  // build the search text in slices after the first paint, so a search is quick
    for (var i = from; i < Math.min(from + 5000, vms.length); i += 1) { hay(vms[i]); }
    if (i < vms.length) { setTimeout(function () { warm(i); }, 0); }
  }(0));
  table.setAttribute("data-ready-ms", (performance.now() - started).toFixed(1));
}());
