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

// Passkeys (WebAuthn). Buttons marked data-passkey-* stay hidden where the browser has no
// WebAuthn; everything else on the pages works without them.
(function () {
  "use strict";
  if (!window.PublicKeyCredential) { return; }

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); }).buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, {id: toBytes(d.id)}); });
  }
  function credentialJSON(credential) {
    var r = credential.response, response = {clientDataJSON: toText(r.clientDataJSON)};
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) { response.userHandle = toText(r.userHandle); }
    }
    return {id: credential.id, rawId: toText(credential.rawId), type: credential.type,
            response: response, clientExtensionResults: credential.getClientExtensionResults()};
  }
  function post(path, body) {
    return fetch(path, {method: "POST", credentials: "same-origin",
                        headers: {"Content-Type": "application/json", "Accept": "application/json"},
                        body: JSON.stringify(body || {})})
      .then(function (answer) {
        return answer.json().then(function (data) {
          if (!answer.ok) { throw data.error || {message: String(answer.status)}; }
          return data;
        });
      });
  }
  function show(box, error) {
    if (!box) { return; }
    box.hidden = false;
    box.textContent = error && error.message
      ? error.message + " " + (error.remedy || "") + (error.reference ? " (" + error.reference + ")" : "")
      : String(error);
    if (error && error.code) { box.setAttribute("data-code", error.code); }
  }
  function get(publicKey) {
    publicKey.challenge = toBytes(publicKey.challenge);
    publicKey.allowCredentials = descriptors(publicKey.allowCredentials);
    return navigator.credentials.get({publicKey: publicKey});
  }

  document.querySelectorAll("[data-passkey-login]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var box = document.querySelector("[data-passkey-error]");
      var flow = button.getAttribute("data-flow");
      post("/api/v1/login/passkey/options", flow ? {flow: flow} : {})
        .then(function (options) { return get(options.publicKey); })
        .then(function (credential) {
          var body = {credential: credentialJSON(credential)};
          return flow ? post("/api/v1/login/mfa", Object.assign(body, {flow: flow, method: "passkey"}))
                      : post("/api/v1/login/passkey", body);
        })
        .then(function () { window.location = button.getAttribute("data-next") || "/account"; })
        .catch(function (error) { show(box, error); });
    });
  });

  document.querySelectorAll("[data-passkey-add]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var box = document.querySelector("[data-passkey-error]");
      var name = document.querySelector("[data-passkey-name]");
      post("/api/v1/account/passkeys/options")
        .then(function (options) {
          var publicKey = options.publicKey;
          publicKey.challenge = toBytes(publicKey.challenge);
          publicKey.user.id = toBytes(publicKey.user.id);
          publicKey.excludeCredentials = descriptors(publicKey.excludeCredentials);
          return navigator.credentials.create({publicKey: publicKey});
        })
        .then(function (credential) {
          return post("/api/v1/account/passkeys",
                      {name: name ? name.value : "", credential: credentialJSON(credential)});
        })
        .then(function (added) {
          var codes = document.querySelector("[data-new-recovery-codes]");
          if (added.recovery_codes && codes) {
            codes.hidden = false;
            codes.querySelector("ol").innerHTML = added.recovery_codes
              .map(function (c) { return "<li><code>" + c + "</code></li>"; }).join("");
          } else {
            window.location = "/account?notice=passkey_added";
          }
        })
        .catch(function (error) {
          if (error && error.code === "auth.step_up_required") {
            window.location = "/account?step_up=1";
          } else {
            show(box, error);
          }
        });
    });
  });
})();
