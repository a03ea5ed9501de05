"use strict";
(function () {
  var form = document.getElementById("filters");
  if (!form) { return; }
  var text = form.querySelector("#filter-text");
  var namespace = form.querySelector("#filter-namespace");
  var rule = form.querySelector("#filter-rule");
  var failingOnly = form.querySelector("#filter-failing");
  var results = form.querySelectorAll("input[name=result]");
  var items = document.querySelectorAll("[data-workload]");
  var shown = document.getElementById("shown-count");

  function apply() {
    var query = text ? text.value.trim().toLowerCase() : "";
    var ns = namespace ? namespace.value : "";
    var wanted = rule ? rule.value : "";
    var onlyFailing = failingOnly ? failingOnly.checked : false;
    var allowed = {};
    results.forEach(function (box) { allowed[box.value] = box.checked; });
    var count = 0;
    items.forEach(function (item) {
      var visible =
        (!query || item.getAttribute("data-search").indexOf(query) !== -1) &&
        (!ns || item.getAttribute("data-namespace") === ns) &&
        (!wanted || (" " + item.getAttribute("data-rules") + " ").indexOf(" " + wanted + " ") !== -1) &&
        (!onlyFailing || item.getAttribute("data-compliant") === "false");
      item.hidden = !visible;
      if (visible) { count += 1; }
      item.querySelectorAll("[data-result]").forEach(function (row) {
        var result = row.getAttribute("data-result");
        var ruleMatch = !wanted || row.getAttribute("data-rule") === wanted;
        row.hidden = !(allowed[result] !== false && ruleMatch);
      });
    });
    if (shown) { shown.textContent = String(count); }
  }

  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  document.querySelectorAll("[data-filter-rule]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (rule) { rule.value = button.getAttribute("data-filter-rule"); }
      apply();
      var target = document.getElementById("workloads");
      if (target) { target.scrollIntoView(); target.focus(); }
    });
  });
  apply();
})();
