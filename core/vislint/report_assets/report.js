/* vislint report: draws the galleries from the embedded JSON a page at a time.
   Galleries flow with the page (no scroll box inside the scrolling page): each shows its
   first page, and a button under it appends the next, so only what was asked for is ever
   in the DOM and the sections after a long gallery stay a scroll away. */
(function () {
  "use strict";
  var PAGE = 24;
  var ROLES = ["", "keep", "subject", "neighbour"];
  var data = JSON.parse(document.getElementById("vislint-data").textContent);
  var img = data.images;
  var state = { label: "", split: "", q: "" };
  var galleries = [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function matches(item) {
    if (!state.label && !state.split && !state.q) return true;
    var tiles = item[2];
    for (var t = 0; t < tiles.length; t++) {
      if (tiles[t][2] === 3) continue; /* a neighbour does not make its finding match */
      var i = tiles[t][0];
      if (state.label && img.label[i] !== state.label) continue;
      if (state.split && img.split[i] !== state.split) continue;
      if (state.q && img.path[i].toLowerCase().indexOf(state.q) < 0) continue;
      return true;
    }
    return false;
  }

  function tile(t) {
    var i = t[0], role = ROLES[t[2]] || "";
    var fig = el("figure", "tile" + (role ? " " + role : ""));
    fig.dataset.path = img.path[i];
    var box;
    if (img.thumb[i] >= 0) {
      box = el("div", "thumb");
      var im = new Image();
      im.decoding = "async";
      im.alt = img.path[i];
      im.src = data.thumbs[img.thumb[i]];
      box.appendChild(im);
    } else {
      box = el("div", "thumb none", "no preview");
    }
    fig.appendChild(box);
    var cap = el("figcaption");
    if (t[2] === 1) cap.appendChild(el("span", "badge keep", "KEEP"));
    cap.appendChild(el("span", "path", img.path[i]));
    var meta = [img.label[i] || "no label", img.split[i] || "no split"].join(" · ");
    cap.appendChild(el("div", "meta", meta));
    if (t[1]) cap.appendChild(el("div", "note", t[1]));
    fig.appendChild(cap);
    if (t.length > 3 && t[3] >= 0) { /* a verified pair: the two aligned */
      var ov = el("div", "overlay");
      var oi = new Image();
      oi.decoding = "async";
      oi.alt = "aligned onto the kept image";
      oi.src = data.thumbs[t[3]];
      ov.appendChild(oi);
      ov.appendChild(el("div", "note", "aligned: kept red, this cyan; grey where they agree"));
      fig.appendChild(ov);
    }
    return fig;
  }

  function finding(item) {
    var f = el("div", "finding");
    f.appendChild(el("div", "head", item[1] + " · severity " + item[0].toFixed(2)));
    var row = el("div", "tiles");
    for (var t = 0; t < item[2].length; t++) row.appendChild(tile(item[2][t]));
    f.appendChild(row);
    return f;
  }

  function Gallery(sec) {
    this.sec = sec;
    var root = el("section", "gallery");
    root.id = "s-" + sec.id;
    root.dataset.check = sec.id;
    var h = el("h2", null, sec.title + " ");
    this.count = el("span", "count");
    h.appendChild(this.count);
    root.appendChild(h);
    root.appendChild(el("p", "note", sec.note));
    this.box = el("div", "items");
    root.appendChild(this.box);
    this.button = el("button", "more");
    var self = this;
    this.button.addEventListener("click", function () { self.more(); });
    root.appendChild(this.button);
    this.root = root;
    this.filter();
  }

  Gallery.prototype.filter = function () {
    var items = this.sec.items;
    this.list = [];
    for (var k = 0; k < items.length; k++) if (matches(items[k])) this.list.push(items[k]);
    this.shown = 0;
    this.box.textContent = "";
    this.more();
    var listed = this.sec.items.length, total = this.sec.total;
    var text = "(" + total.toLocaleString() + " " + this.sec.unit;
    if (listed < total) text += "; the " + listed.toLocaleString() + " most severe listed";
    if (this.list.length !== listed) text += "; " + this.list.length.toLocaleString() + " match the filter";
    this.count.textContent = text + ")";
    this.root.dataset.matching = this.list.length;
  };

  Gallery.prototype.more = function () {
    if (this.shown >= this.list.length) return;
    var end = Math.min(this.shown + PAGE, this.list.length);
    var frag = document.createDocumentFragment();
    for (var k = this.shown; k < end; k++) frag.appendChild(finding(this.list[k]));
    this.shown = end;
    this.box.appendChild(frag);
    this.box.dataset.shown = this.shown;
    var left = this.list.length - this.shown;
    this.button.hidden = left === 0;
    this.button.textContent = "show " + Math.min(PAGE, left) + " more (" +
      left.toLocaleString() + " not shown)";
  };

  function fill(select, values) {
    for (var k = 0; k < values.length; k++) {
      var o = el("option", null, values[k]);
      o.value = values[k];
      select.appendChild(o);
    }
  }

  function refilter() {
    var n = 0;
    for (var g = 0; g < galleries.length; g++) { galleries[g].filter(); n += galleries[g].list.length; }
    document.getElementById("f-count").textContent =
      (state.label || state.split || state.q) ? n.toLocaleString() + " findings match" : "";
  }

  var fl = document.getElementById("f-label"), fs = document.getElementById("f-split"),
      fq = document.getElementById("f-search");
  fill(fl, data.labels);
  fill(fs, data.splits);
  fl.addEventListener("change", function () { state.label = fl.value; refilter(); });
  fs.addEventListener("change", function () { state.split = fs.value; refilter(); });
  var timer = null;
  fq.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.q = fq.value.trim().toLowerCase(); refilter(); }, 150);
  });

  var main = document.getElementById("galleries");
  for (var s = 0; s < data.sections.length; s++) {
    var g = new Gallery(data.sections[s]);
    galleries.push(g);
    main.appendChild(g.root);
  }
  /* a section reached by a link starts below the sticky filter bar, whose height depends on
     how its controls wrap */
  var nav = document.getElementById("filters");
  function navHeight() {
    document.documentElement.style.setProperty("--nav-h", nav.offsetHeight + "px");
  }
  navHeight();
  window.addEventListener("resize", navHeight);
  document.body.dataset.ready = "1";
  window.vislintReadyAt = performance.now();
})();
