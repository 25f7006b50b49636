// Live character count and speaking time under a script textarea (data-stats-for names it).
// The rate and the translated formats come from the element's data attributes, as the server used them.
document.querySelectorAll('[data-stats-for]').forEach((out) => {
  const field = document.getElementById(out.dataset.statsFor);
  if (!field) return;
  const rate = parseFloat(out.dataset.rate) || 4.5;
  const fill = (format, values) => format.replace(/\{(\w+)\}/g, (_m, key) => String(values[key]));
  const update = () => {
    const chars = field.value.replace(/\s/g, '').length;
    const seconds = Math.round(chars / rate);
    const time = seconds >= 60
      ? fill(out.dataset.minutes, { m: Math.floor(seconds / 60), s: seconds % 60 })
      : fill(out.dataset.seconds, { s: seconds });
    out.textContent = fill(out.dataset.format, { chars, time });
  };
  field.addEventListener('input', update);
});
