(function () {
  "use strict";
  // Resumable uploads (tus 1.0 at /uploads) for the conversation form. Anything missing: the
  // plain form does the work, as with JavaScript off.
  var form = document.getElementById("send-form");
  var input = document.getElementById("files");
  if (!form || !input || !window.XMLHttpRequest || !window.sessionStorage || !window.Blob ||
      !Blob.prototype.slice || !window.TextEncoder || !window.btoa) { return; }
  var status = document.getElementById("upload-status");
  var bar = document.getElementById("upload-progress");
  var root = form.getAttribute("data-root");
  var token = form.querySelector("input[name=csrf_token]").value;
  function say(key) { status.textContent = form.getAttribute("data-" + key); }
  function b64(text) {
    var bytes = new TextEncoder().encode(text), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s);
  }
  // A circuit can stall without closing: no error ever comes, and the upload would wait for
  // ever. A request that moves nothing for STALL ms is given up and resumed from the server's
  // offset (which loses at most the part of a 64 KiB chunk in flight).
  var STALL = 30000;
  function request(method, url, headers, body, onprogress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest(), last = Date.now(), watch;
      xhr.open(method, url);
      headers["Tus-Resumable"] = "1.0.0";
      headers["X-CSRF-Token"] = token;
      for (var h in headers) { xhr.setRequestHeader(h, headers[h]); }
      xhr.upload.onprogress = function (e) {
        last = Date.now();
        if (onprogress) { onprogress(e); }
      };
      watch = setInterval(function () {
        if (Date.now() - last > STALL) { xhr.abort(); }
      }, 1000);
      function settle(fn, value) { clearInterval(watch); fn(value); }
      xhr.onload = function () {
        // Busy (another request still writing), throttled or unavailable: wait and ask again.
        if (xhr.status === 409 || xhr.status === 429 || xhr.status >= 500) {
          settle(reject, new Error("network"));
        } else { settle(resolve, xhr); }
      };
      xhr.onerror = xhr.onabort = xhr.ontimeout = function () {
        settle(reject, new Error("network"));
      };
      xhr.send(body);
    });
  }
  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function upload(file) {
    var key = "sealdrop-upload:" + [file.name, file.size, file.lastModified].join(":");
    var url = sessionStorage.getItem(key);
    var tries = 0;
    function fail() { throw new Error("refused"); }
    function create() {
      return request("POST", root + "uploads", {
        "Upload-Length": String(file.size),
        "Upload-Metadata": "filename " + b64(file.name) + ",filetype " + b64(file.type || "")
      }, null).then(function (xhr) {
        if (xhr.status !== 201) { fail(); }
        url = xhr.getResponseHeader("Location");
        sessionStorage.setItem(key, url);
        return 0;
      });
    }
    var reached = -1;
    function offset() {
      if (!url) { return create(); }
      return request("HEAD", url, {}, null).then(function (xhr) {
        if (xhr.status === 404) { url = null; sessionStorage.removeItem(key); return create(); }
        if (xhr.status !== 200) { fail(); }
        var at = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
        // The server got further since the last try: a slow link, not a dead one.
        if (at > reached) { tries = 0; reached = at; }
        return at;
      });
    }
    function send(start) {
      if (start >= file.size && file.size > 0) { return Promise.resolve(); }
      return request("PATCH", url, {
        "Upload-Offset": String(start), "Content-Type": "application/offset+octet-stream"
      }, file.slice(start), function (e) {
        var done = file.size ? (start + e.loaded) / file.size : 1;
        bar.value = done;
      }).then(function (xhr) {
        if (xhr.status !== 204) { fail(); }
        var now = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
        if (now < file.size) { tries = 0; return send(now); }
      });
    }
    function attempt() {
      return offset().then(send).catch(function (error) {
        // A dropped connection or circuit: ask the server where it got to and go on from there.
        if (error.message !== "network" || tries++ > 30) { throw error; }
        say("retrying");
        return wait(Math.min(1000 * tries, 10000)).then(attempt);
      });
    }
    return attempt().then(function () { sessionStorage.removeItem(key); });
  }
  form.addEventListener("submit", function (event) {
    if (!input.files || !input.files.length) { return; }
    event.preventDefault();
    var files = Array.prototype.slice.call(input.files);
    var message = form.querySelector("textarea[name=message]");
    bar.hidden = false;
    say("progress");
    form.querySelector("button[type=submit]").disabled = true;
    files.reduce(function (p, f) { return p.then(function () { return upload(f); }); },
      Promise.resolve()).then(function () {
      if (message && message.value.trim()) {
        input.value = "";
        form.submit();
      } else {
        window.location.assign(root + "submitted");
      }
    }, function () {
      say("failed");
      form.querySelector("button[type=submit]").disabled = false;
    });
  });
}());
