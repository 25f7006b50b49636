// The cue table of the package form: an "Add cue" button that appends an empty row. The form works
// without it (the table always ends with an empty row for a new cue, and "Remove" is a checkbox).
// Rows are only ever added at the end, so a row's number (what "Remove" posts) never changes.
(function () {
  const table = document.querySelector('[data-cue-table]');
  const template = document.querySelector('template[data-cue-template]');
  const button = document.querySelector('[data-cue-add]');
  if (!table || !template || !button) { return; }
  const body = table.tBodies[0];

  button.hidden = false;
  button.addEventListener('click', () => {
    const row = template.content.firstElementChild.cloneNode(true);
    const number = String(body.rows.length + 1);
    row.setAttribute('data-key', number);
    row.setAttribute('data-testid', 'cue-row');
    row.querySelector('.cue-number').textContent = number;
    // A new cue usually starts where the one above ends.
    const ends = body.querySelectorAll('input[name="cues-end"]');
    for (let i = ends.length - 1; i >= 0; i -= 1) {
      if (ends[i].value.trim()) { row.querySelector('input[name="cues-start"]').value = ends[i].value.trim(); break; }
    }
    body.appendChild(row);
    row.querySelector('input[name="cues-end"]').focus();
  });
})();
