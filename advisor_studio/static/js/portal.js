// Copy buttons of the mcn portal. Without JavaScript the buttons stay hidden and the text stays
// selectable in its read-only field.
(function () {
  document.querySelectorAll('[data-copy-target]').forEach(function (button) {
    button.classList.remove('d-none');
    button.addEventListener('click', function () {
      const field = document.getElementById(button.getAttribute('data-copy-target'));
      if (!field) { return; }
      const done = function () {
        const label = button.textContent;
        button.textContent = button.getAttribute('data-copied-label');
        window.setTimeout(function () { button.textContent = label; }, 1500);
      };
      const fallback = function () {
        field.focus();
        field.select();
        try { if (document.execCommand('copy')) { done(); } } catch (e) { /* text stays selected */ }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, fallback);
      } else {
        fallback();
      }
    });
  });
})();
