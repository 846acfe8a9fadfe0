// Shows every <time datetime="..."> in the viewer's own time zone; the
// page carries UTC, readable without this script.
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var d = new Date(el.getAttribute("datetime"));
  if (!isNaN(d)) {
    el.title = el.textContent;
    el.textContent = d.toLocaleString();
  }
});
