// Dark / light theme: <html data-theme>, remembered in localStorage ("coincast.theme").
// index.html applies the remembered theme before first paint; this wires the toggle button.

const KEY = "coincast.theme";

export function currentTheme() {
  return document.documentElement.getAttribute("data-theme") === "light" ? "light" : "dark";
}

function label(button, theme) {
  button.setAttribute("aria-label", theme === "dark" ? "Switch to light theme" : "Switch to dark theme");
}

/**
 * @param {HTMLButtonElement} button
 * @param {(theme: string) => void} onChange called after the theme changed
 */
export function initTheme(button, onChange) {
  label(button, currentTheme());
  button.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try {
      localStorage.setItem(KEY, next);
    } catch {
      /* storage disabled: the theme holds for this page only */
    }
    label(button, next);
    onChange(next);
  });
}
