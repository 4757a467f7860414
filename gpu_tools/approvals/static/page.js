// The approval page's only script (served by gpu-mcp; the Content-Security-Policy allows no other).
// Passkeys: with approval=passkey, Approve first asks the browser's own authenticator
// (navigator.credentials.get, user verification required) for an assertion over a challenge bound
// to this approval, and posts it with the form; enrollment and passkey sign-in work the same way.
"use strict";

function b64uToBytes(text) {
  const pad = "=".repeat((4 - (text.length % 4)) % 4);
  const raw = atob((text + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function bytesToB64u(buffer) {
  const bytes = new Uint8Array(buffer);
  let raw = "";
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function requestOptions(options) {
  options.challenge = b64uToBytes(options.challenge);
  for (const c of options.allowCredentials || []) c.id = b64uToBytes(c.id);
  return options;
}

function creationOptions(options) {
  options.challenge = b64uToBytes(options.challenge);
  options.user.id = b64uToBytes(options.user.id);
  for (const c of options.excludeCredentials || []) c.id = b64uToBytes(c.id);
  return options;
}

function assertionJSON(credential) {
  const r = credential.response;
  return JSON.stringify({
    id: credential.id,
    rawId: bytesToB64u(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: bytesToB64u(r.clientDataJSON),
      authenticatorData: bytesToB64u(r.authenticatorData),
      signature: bytesToB64u(r.signature),
      userHandle: r.userHandle ? bytesToB64u(r.userHandle) : null,
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  });
}

function registrationJSON(credential) {
  const r = credential.response;
  return JSON.stringify({
    id: credential.id,
    rawId: bytesToB64u(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: bytesToB64u(r.clientDataJSON),
      attestationObject: bytesToB64u(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : [],
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  });
}

function say(text) {
  const status = document.getElementById("status");
  if (status) {
    status.textContent = text;
    status.className = "status denied";
  }
}

async function getJSON(url) {
  const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!answer.ok) throw new Error(await answer.text());
  return answer.json();
}

async function postJSON(url, body) {
  const csrf = document.querySelector("input[name=csrf]");
  const answer = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.value : "" },
    body,
  });
  if (!answer.ok) throw new Error(await answer.text());
  return answer.json();
}

document.addEventListener("DOMContentLoaded", () => {
  const decide = document.querySelector("form.decide[data-passkey]");
  if (decide) {
    let submitter = null;
    decide.addEventListener("click", (event) => {
      if (event.target instanceof HTMLButtonElement) submitter = event.target;
    });
    decide.addEventListener("submit", async (event) => {
      const choice = submitter ? submitter.value : "approve";
      const field = decide.querySelector("input[name=assertion]");
      if (choice !== "approve" || field.value) return;
      event.preventDefault();
      try {
        const options = requestOptions(await getJSON(decide.dataset.passkey));
        const credential = await navigator.credentials.get({ publicKey: options });
        field.value = assertionJSON(credential);
        const hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "decision";
        hidden.value = "approve";
        decide.appendChild(hidden);
        decide.submit();
      } catch (error) {
        say("No passkey approval: " + (error && error.message ? error.message : error));
      }
    });
  }

  const enroll = document.getElementById("passkey-enroll");
  if (enroll) {
    enroll.addEventListener("click", async () => {
      try {
        const options = creationOptions(await getJSON(enroll.dataset.options));
        const credential = await navigator.credentials.create({ publicKey: options });
        await postJSON(enroll.dataset.verify, registrationJSON(credential));
        say("Passkey enrolled.");
        document.getElementById("status").className = "status approved";
      } catch (error) {
        say("Not enrolled: " + (error && error.message ? error.message : error));
      }
    });
  }

  const signin = document.getElementById("passkey-signin");
  if (signin) {
    signin.addEventListener("click", async () => {
      try {
        const options = requestOptions(await getJSON(signin.dataset.options));
        const credential = await navigator.credentials.get({ publicKey: options });
        await postJSON(signin.dataset.verify, assertionJSON(credential));
        window.location.assign(signin.dataset.next);
      } catch (error) {
        say("Not signed in: " + (error && error.message ? error.message : error));
      }
    });
  }
});
