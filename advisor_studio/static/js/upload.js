// Streams the chosen video to the server with a progress bar, then follows render progress.
(function () {
  function uploadForm(form) {
    form.addEventListener('submit', function (event) {
      const input = form.querySelector('input[type=file]');
      if (!input || !input.files.length || !window.XMLHttpRequest) { return; }
      event.preventDefault();
      const file = input.files[0];
      const box = form.querySelector('[data-upload-progress]');
      const bar = box.querySelector('[data-bar]');
      const error = form.querySelector('[data-upload-error]');
      const button = form.querySelector('button[type=submit]');
      error.textContent = '';
      box.classList.remove('d-none');
      button.disabled = true;
      const xhr = new XMLHttpRequest();
      xhr.open('POST', form.action);
      xhr.setRequestHeader('X-CSRFToken', form.querySelector('input[name=csrf_token]').value);
      xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
      xhr.setRequestHeader('X-Filename', encodeURIComponent(file.name));
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.addEventListener('progress', function (e) {
        if (e.lengthComputable) {
          const pct = Math.round((e.loaded / e.total) * 100);
          bar.style.width = pct + '%';
          bar.textContent = pct + '%';
        }
      });
      xhr.addEventListener('load', function () {
        button.disabled = false;
        if (xhr.status === 201) { window.location.reload(); return; }
        // The page gives the words (data-upload-failed, data-network-error) in the reader's language.
        let message = (form.getAttribute('data-upload-failed') || '') + ' (' + xhr.status + ')';
        try { message = JSON.parse(xhr.responseText).error.message; } catch (ignored) { /* keep default */ }
        error.textContent = message;
        box.classList.add('d-none');
      });
      xhr.addEventListener('error', function () {
        button.disabled = false;
        error.textContent = form.getAttribute('data-network-error') || '';
      });
      xhr.send(file);
    });
  }

  function follow(item) {
    const url = item.getAttribute('data-rendition-status-url');
    const bar = item.querySelector('[data-bar]');
    const badge = item.querySelector('[data-status]');
    const labels = JSON.parse(item.getAttribute('data-status-labels') || '{}');
    const colors = { queued: 'secondary', running: 'info', ready: 'primary', failed: 'danger' };
    const timer = window.setInterval(function () {
      fetch(url, { headers: { 'Accept': 'application/json' }, credentials: 'same-origin' })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (bar) {
            bar.style.width = data.progress + '%';
            bar.textContent = Math.round(data.progress) + '%';
          }
          if (badge && labels[data.status]) {  // the badge follows the bar: "rendering" once it climbs
            badge.textContent = labels[data.status];
            badge.className = 'badge text-bg-' + (colors[data.status] || 'secondary');
          }
          if (data.status === 'ready' || data.status === 'failed') {
            window.clearInterval(timer);
            window.location.reload();
          }
        })
        .catch(function () { /* try again on the next tick */ });
    }, 1500);
  }

  document.querySelectorAll('form[data-upload]').forEach(uploadForm);
  document.querySelectorAll('[data-rendition-status-url]').forEach(follow);
  document.querySelectorAll('[data-progress]').forEach(function (bar) {
    bar.style.width = bar.getAttribute('data-progress') + '%';
  });
})();
