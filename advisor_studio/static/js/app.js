// Ask for confirmation before any form marked data-confirm is submitted.
document.addEventListener('submit', (event) => {
  const message = event.target.getAttribute('data-confirm');
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// Pages showing work in progress (an integrity run) reload themselves until it is done.
(function () {
  const marker = document.querySelector("[data-reload-after]");
  if (marker) {
    const seconds = Number(marker.getAttribute("data-reload-after")) || 5;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();

// Copy buttons (sharing tasks): data-copy-target names the field whose text is copied.
document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-copy-target]');
  if (!button) { return; }
  const field = document.getElementById(button.getAttribute('data-copy-target'));
  if (!field) { return; }
  field.select();
  const done = () => { button.textContent = button.getAttribute('data-copied-label') || button.textContent; };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand('copy'); done(); });
  } else {
    document.execCommand('copy');
    done();
  }
});
