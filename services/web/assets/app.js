/* global document, window, fetch */
/* ernstfall: live progress of a running restore test (the only script; every page works without it).
   Polls the element's data-live URL every 2 s, updates the step list and the status region
   (aria-live="polite" announces the change), and reloads once the test has finished. */
(function () {
  'use strict';
  var box = document.querySelector('[data-live]');
  if (!box || !window.fetch) return;
  var url = box.getAttribute('data-live');
  var status = document.getElementById('run-status');
  var failures = 0;

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function update(data) {
    setText(status, data.statusText);
    (data.phases || []).forEach(function (p) {
      var row = box.querySelector('[data-phase="' + p.name + '"]');
      if (!row) return;
      row.className = 'phase phase-' + p.state;
      setText(row.querySelector('.phase-state'), p.stateText);
      setText(row.querySelector('.phase-start'), p.startText);
      setText(row.querySelector('.phase-duration'), p.durationText);
    });
  }

  function tick() {
    fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' }, cache: 'no-store' })
      .then(function (res) {
        if (!res.ok || (res.headers.get('content-type') || '').indexOf('json') < 0) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (data) {
        failures = 0;
        update(data);
        if (data.finished) {
          window.location.reload();
          return;
        }
        window.setTimeout(tick, 2000);
      })
      .catch(function () {
        // signed out, or the server is away: back off, give up after a while (the page still has its refresh link)
        failures += 1;
        if (failures < 10) window.setTimeout(tick, 2000 * failures);
      });
  }

  window.setTimeout(tick, 2000);
})();
