// Buttons marked data-copy-target copy the text of the field they name (a key or secret shown once).
document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-copy-target]');
  if (!button) return;
  const field = document.querySelector(button.getAttribute('data-copy-target'));
  if (!field) return;
  field.select();
  if (navigator.clipboard) {
    navigator.clipboard.writeText(field.value).catch(() => document.execCommand('copy'));
  } else {
    document.execCommand('copy');
  }
});
