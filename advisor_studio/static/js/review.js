// Review page: anchor comments to a selected text span or to the video's current time, jump to
// anchors, seek the video from subtitle cues, and show the reject confirmation only when needed.
// Offsets are in Unicode code points of the field text, as the server counts them: each
// server-rendered piece carries data-o, its offset in the field.
(function () {
  'use strict';

  const form = document.querySelector('[data-testid="comment-form"]');
  const video = document.getElementById('review-video');

  function codePoints(text) {
    return Array.from(text).length;
  }

  // Offset (in code points) of a DOM boundary point inside a .field-text container.
  function offsetOf(container, node, offset) {
    if (node.nodeType === Node.TEXT_NODE) {
      const piece = node.parentElement.closest('[data-o]');
      if (!piece || !container.contains(piece)) return null;
      return Number(piece.dataset.o) + codePoints(node.textContent.slice(0, offset));
    }
    if (node === container) {
      const child = container.childNodes[offset];
      if (child && child.dataset && child.dataset.o !== undefined) return Number(child.dataset.o);
      return codePoints(container.textContent);
    }
    const piece = node.closest ? node.closest('[data-o]') : null;
    if (!piece || !container.contains(piece)) return null;
    return Number(piece.dataset.o) + (offset > 0 ? codePoints(piece.textContent) : 0);
  }

  function setValue(name, value) {
    const input = form && form.querySelector('[name="' + name + '"]');
    if (input) input.value = value;
  }

  function showAnchor(text) {
    const box = form && form.querySelector('[data-testid="anchor-preview"]');
    if (!box) return;
    box.querySelector('[data-anchor-text]').textContent = text;
    box.classList.toggle('d-none', !text);
  }

  function clearAnchor() {
    ['anchor_field', 'anchor_start', 'anchor_end', 'timecode_ms'].forEach((name) => setValue(name, ''));
    showAnchor('');
  }

  function captureSelection() {
    const selection = window.getSelection();
    if (!form || !selection || selection.rangeCount === 0 || selection.isCollapsed) return;
    const range = selection.getRangeAt(0);
    const container = range.commonAncestorContainer.nodeType === Node.ELEMENT_NODE
      ? range.commonAncestorContainer.closest('[data-anchor-field]')
      : range.commonAncestorContainer.parentElement.closest('[data-anchor-field]');
    if (!container) return;
    const start = offsetOf(container, range.startContainer, range.startOffset);
    const end = offsetOf(container, range.endContainer, range.endOffset);
    if (start === null || end === null || end <= start) return;
    setValue('anchor_field', container.dataset.anchorField);
    setValue('anchor_start', start);
    setValue('anchor_end', end);
    const quoted = Array.from(container.textContent).slice(start, end).join('');
    showAnchor(container.dataset.anchorLabel + ' ' + (start + 1) + '–' + end + ': “' + quoted.slice(0, 80) + '”');
  }

  document.querySelectorAll('[data-anchor-field]').forEach((container) => {
    container.addEventListener('mouseup', captureSelection);
    container.addEventListener('keyup', captureSelection);
  });

  if (form) {
    const clear = form.querySelector('[data-testid="anchor-clear"]');
    if (clear) clear.addEventListener('click', clearAnchor);
    const timeButton = form.querySelector('[data-testid="anchor-timecode"]');
    if (timeButton && video) {
      timeButton.addEventListener('click', () => {
        const ms = Math.round(video.currentTime * 1000);
        setValue('anchor_field', '');
        setValue('anchor_start', '');
        setValue('anchor_end', '');
        setValue('timecode_ms', ms);
        showAnchor(timeButton.dataset.label + ' ' + (ms / 1000).toFixed(1) + ' s');
      });
    }
  }

  // Select an anchored span again, from the server-rendered pieces.
  function selectSpan(field, start, end) {
    const container = document.querySelector('[data-anchor-field="' + field + '"]');
    if (!container) return;
    const range = document.createRange();
    let placedStart = false;
    for (const piece of container.querySelectorAll('[data-o]')) {
      const from = Number(piece.dataset.o);
      const chars = Array.from(piece.textContent);
      const to = from + chars.length;
      const textNode = piece.firstChild;
      if (!textNode) continue;
      const unitOffset = (k) => chars.slice(0, k).join('').length;
      if (!placedStart && start >= from && start < to) {
        range.setStart(textNode, unitOffset(start - from));
        placedStart = true;
      }
      if (placedStart && end > from && end <= to) {
        range.setEnd(textNode, unitOffset(end - from));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        container.scrollIntoView({ block: 'center' });
        return;
      }
    }
  }

  document.addEventListener('click', (event) => {
    const jump = event.target.closest('[data-jump-field]');
    if (jump) {
      event.preventDefault();
      selectSpan(jump.dataset.jumpField, Number(jump.dataset.jumpStart), Number(jump.dataset.jumpEnd));
      return;
    }
    const seek = event.target.closest('[data-seek-ms]');
    if (seek && video) {
      event.preventDefault();
      video.currentTime = Number(seek.dataset.seekMs) / 1000;
      video.scrollIntoView({ block: 'center' });
    }
  });

  // Decision form: the rejection checkbox only matters for "reject".
  const decision = document.querySelector('[data-testid="decision-form"]');
  if (decision) {
    const confirmBox = decision.querySelector('[data-reject-only]');
    const update = () => {
      const chosen = decision.querySelector('input[name="decision"]:checked');
      if (confirmBox) confirmBox.classList.toggle('d-none', !chosen || chosen.value !== 'reject');
    };
    decision.addEventListener('change', update);
    update();
  }
})();
