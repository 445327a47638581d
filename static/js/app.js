// Small progressive enhancements; every page works without them.

// Customer avatars are WeCom's URLs: where they can't load (offline, expired), show the initial instead.
// Registered before the page is parsed (this script is not deferred), in the capture phase because
// image errors don't bubble.
document.addEventListener("error", (event) => {
  const img = event.target;
  if (img instanceof HTMLImageElement && img.classList.contains("avatar")) {
    const initial = document.createElement("span");
    initial.className = img.className + " blank";
    initial.setAttribute("aria-hidden", "true");
    initial.textContent = img.dataset.initial || "?";
    img.replaceWith(initial);
  }
}, true);

// Delegated handlers, registered before the page is parsed, so a control works from its first paint.
document.addEventListener("click", async (event) => {
  const toggle = event.target.closest("[data-nav-toggle]");
  if (toggle) {
    const nav = document.getElementById("sidenav");
    if (nav) {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    }
    return;
  }
  const btn = event.target.closest("[data-copy]");
  if (btn) {
    const target = document.getElementById(btn.dataset.copy);
    const text = target.value !== undefined ? target.value : target.textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      target.select && target.select();
      document.execCommand("copy");
    }
    const original = btn.textContent;
    btn.textContent = btn.dataset.copied || "✓";
    setTimeout(() => { btn.textContent = original; }, 1500);
  }
});

// Forms that ask before something that can't be undone: <form data-confirm="…">. A delegated handler, not
// an inline onsubmit="", so the Content-Security-Policy can refuse every inline script.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});
