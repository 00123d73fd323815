// agentmem inspector: small progressive enhancements; every page works without this file.
"use strict";
document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
  input.addEventListener("change", function () { input.form.submit(); });
});
document.querySelectorAll("header form.bar select").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
document.querySelectorAll(".meter[data-width]").forEach(function (meter) {
  meter.style.width = meter.getAttribute("data-width") + "%";
});
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = "copied";
      setTimeout(function () { button.textContent = "copy"; }, 1200);
    }, function () { button.textContent = "copy failed"; });
  });
});
