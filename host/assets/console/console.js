// Progressive enhancement only: every page works without this file.
// - Buttons with data-confirm ask before a destructive write.
// - Elements with data-copy copy their target's text to the clipboard.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var message = button && button.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
document.addEventListener("click", function (event) {
  var target = event.target.closest("[data-copy]");
  if (!target || !navigator.clipboard) return;
  var source = document.getElementById(target.getAttribute("data-copy"));
  if (source) navigator.clipboard.writeText(source.textContent.trim());
});
