// Findings tables: clicking a finding selects its text where it was found. First choice is the
// editor (a form marked data-finding-editor with a field of the finding's name), as long as the
// field still holds the text the pre-check saw there; otherwise the highlighted copy of the text
// (pieces carrying data-o, their offset in the field) or its <mark> of that finding number.
// Offsets are Unicode code points, as the server counts them; the DOM counts UTF-16 units.
(function () {
  'use strict';

  function units(text, points) {
    return Array.from(text).slice(0, points).join('').length;
  }

  function selectInEditor(field, start, end, expected) {
    const input = document.querySelector('[data-finding-editor] [name="' + CSS.escape(field) + '"]');
    if (!input || !(input.tagName === 'TEXTAREA' || ['text', 'search'].includes(input.type))) return false;
    const from = units(input.value, start);
    const to = units(input.value, end);
    if (to <= from || (expected && input.value.slice(from, to) !== expected)) return false;
    input.focus({ preventScroll: true });
    input.setSelectionRange(from, to);
    input.scrollIntoView({ block: 'center' });
    if (input.tagName === 'TEXTAREA') {
      // Bring the selected line into the textarea's own view (roughly: by its share of the text).
      const share = from / Math.max(input.value.length, 1);
      input.scrollTop = Math.max(0, share * input.scrollHeight - input.clientHeight / 2);
    }
    return true;
  }

  function selectRange(range, container) {
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    container.scrollIntoView({ block: 'center' });
  }

  function selectInPieces(field, start, end) {
    const container = document.querySelector('[data-finding-target="' + CSS.escape(field) + '"]');
    if (!container) return false;
    const range = document.createRange();
    let placedStart = false;
    for (const piece of container.querySelectorAll('[data-o]')) {
      const from = Number(piece.dataset.o);
      const text = piece.firstChild;
      if (!text || text.nodeType !== Node.TEXT_NODE) continue;
      const to = from + Array.from(text.textContent).length;
      if (!placedStart && start >= from && start < to) {
        range.setStart(text, units(text.textContent, start - from));
        placedStart = true;
      }
      if (placedStart && end > from && end <= to) {
        range.setEnd(text, units(text.textContent, end - from));
        selectRange(range, container);
        return true;
      }
    }
    return false;
  }

  function selectMarks(field, number) {
    const container = document.querySelector('[data-finding-marks="' + CSS.escape(field) + '"]');
    if (!container || !number) return false;
    const marks = Array.from(container.querySelectorAll('mark[data-findings]'))
      .filter((mark) => mark.dataset.findings.split(' ').includes(number));
    if (!marks.length) return false;
    const range = document.createRange();
    range.setStartBefore(marks[0]);
    range.setEndAfter(marks[marks.length - 1]);
    selectRange(range, container);
    return true;
  }

  document.addEventListener('click', (event) => {
    const link = event.target.closest('[data-finding-select]');
    if (!link) return;
    const field = link.dataset.field || '';
    const start = Number(link.dataset.start);
    const end = Number(link.dataset.end);
    if (!(end > start)) return;
    const done = selectInEditor(field, start, end, link.dataset.text)
      || selectInPieces(field, start, end)
      || selectMarks(field, link.dataset.number);
    if (done) {
      event.preventDefault();
      document.querySelectorAll('.finding-selected').forEach((row) => row.classList.remove('finding-selected'));
      const row = link.closest('tr, li');
      if (row) row.classList.add('finding-selected');
    }
  });
})();
