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
