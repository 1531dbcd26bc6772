// Passkeys in the browser: WebAuthn's JSON forms in and out, so the Rust app passes strings
// and never handles ArrayBuffers. Uses the JSON helpers of the WebAuthn Level 3 API
// (parseCreationOptionsFromJSON, toJSON), which current browsers have.
"use strict";
window.skjoldPasskey = {
  supported() {
    return typeof window.PublicKeyCredential === "function" &&
      typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function";
  },
  // options: the JSON the server sent ({publicKey: …}); answers the credential's JSON text.
  async create(options) {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(options).publicKey);
    const credential = await navigator.credentials.create({ publicKey });
    return JSON.stringify(credential.toJSON());
  },
  async get(options) {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(options).publicKey);
    const credential = await navigator.credentials.get({ publicKey });
    return JSON.stringify(credential.toJSON());
  },
};
