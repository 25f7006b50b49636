// The admin user form: a section marked data-role-section="advisor" (or "mcn") shows only while that
// role is ticked. Its fields are disabled while hidden, so they are not sent; without JavaScript every
// section shows and the server ignores what does not apply to the chosen roles.
(function () {
  document.querySelectorAll('[data-role-section]').forEach(function (section) {
    const form = section.closest('form');
    const role = section.getAttribute('data-role-section');
    const box = form && form.querySelector('input[name="roles"][value="' + role + '"]');
    if (!box) { return; }
    const update = function () {
      section.hidden = !box.checked;
      section.querySelectorAll('input, select, textarea').forEach(function (el) { el.disabled = !box.checked; });
    };
    box.addEventListener('change', update);
    update();
  });
})();
