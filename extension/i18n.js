// Puts the catalogue's words, in the browser's language, into the page before its Wasm loads,
// so the first paint is already translated. An element names its message with data-i18n (its
// text) or data-i18n-title, -aria-label, -placeholder, -alt (that attribute); the text the
// page's Wasm writes later comes from the same catalogue.
const api = globalThis.browser ?? globalThis.chrome;
const message = (key) => api.i18n.getMessage(key) || key;
const attributes = { i18nTitle: "title", i18nAriaLabel: "aria-label", i18nPlaceholder: "placeholder", i18nAlt: "alt" };

document.documentElement.lang = api.i18n.getUILanguage();
const marked = "[data-i18n],[data-i18n-title],[data-i18n-aria-label],[data-i18n-placeholder],[data-i18n-alt]";
for (const el of document.querySelectorAll(marked)) {
  for (const [data, attribute] of Object.entries(attributes)) {
    if (el.dataset[data]) el.setAttribute(attribute, message(el.dataset[data]));
  }
  if (el.dataset.i18n) el.textContent = message(el.dataset.i18n);
}
