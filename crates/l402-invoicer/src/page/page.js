// The page works without this script; it adds the browser-wallet (WebLN) payment, which pays,
// retries this URL with the credential and shows what the server answered, and a copy button.
(function () {
  "use strict";
  var body = document.body;
  var invoice = body.dataset.invoice;
  var macaroon = body.dataset.macaroon;
  var status = document.getElementById("status");
  var pay = document.getElementById("webln-pay");
  var copy = document.getElementById("copy-invoice");
  document.getElementById("curl").textContent =
    "curl -H 'Authorization: L402 " + macaroon + ":PREIMAGE' '" + location.href + "'";

  function fail(message) {
    body.dataset.state = "failed";
    status.textContent = message;
    pay.disabled = false;
  }

  copy.hidden = false;
  copy.addEventListener("click", function () {
    navigator.clipboard.writeText(invoice).then(
      function () { status.textContent = "Invoice copied."; },
      function () { status.textContent = "Could not copy: select the invoice text instead."; });
  });

  pay.hidden = false;
  pay.addEventListener("click", async function () {
    if (!window.webln) {
      return fail("No browser wallet (WebLN) found: scan the QR code or copy the invoice.");
    }
    pay.disabled = true;
    body.dataset.state = "paying";
    try {
      status.textContent = "Waiting for the wallet…";
      await window.webln.enable();
      var payment = await window.webln.sendPayment(invoice);
      if (!payment || !/^[0-9a-fA-F]{64}$/.test(payment.preimage || "")) {
        return fail("The wallet returned no preimage.");
      }
      var credential = "L402 " + macaroon + ":" + payment.preimage.toLowerCase();
      status.textContent = "Paid. Loading the resource…";
      var response = await fetch(location.href, {
        headers: { Authorization: credential },
        cache: "no-store",
        credentials: "omit",
      });
      var text = await response.text();
      if (!response.ok) {
        return fail("Paid, but the server answered " + response.status + ": " + text);
      }
      document.getElementById("credential").textContent = "Authorization: " + credential;
      document.getElementById("paid").textContent = text;
      document.getElementById("result").hidden = false;
      status.textContent = "Paid.";
      body.dataset.state = "paid";
    } catch (e) {
      fail("Payment failed: " + (e && e.message ? e.message : e));
    }
  });
})();
