// Warn while typing: Caps Lock on, or a full-width (zenkaku) IME mode.
// Pages work without this script; it only adds the warnings.
(function () {
  "use strict";
  var FULL_WIDTH = /[\u3000\uFF01-\uFF5E]/;
  function toggle(input, selector, on) {
    var form = input.form || document;
    var note = form.querySelector(selector);
    if (note) { note.hidden = !on; }
  }
  document.querySelectorAll("[data-watch-caps]").forEach(function (input) {
    ["keydown", "keyup"].forEach(function (type) {
      input.addEventListener(type, function (event) {
        if (event.getModifierState) {
          toggle(input, "[data-caps-warning]", event.getModifierState("CapsLock"));
        }
      });
    });
  });
  document.querySelectorAll("[data-watch-width]").forEach(function (input) {
    function check(event) {
      var composing = event && event.isComposing;
      toggle(input, "[data-width-warning]", composing || FULL_WIDTH.test(input.value));
    }
    input.addEventListener("input", check);
    input.addEventListener("compositionstart", function () {
      toggle(input, "[data-width-warning]", true);
    });
  });
})();
