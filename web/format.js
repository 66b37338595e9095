/* format.js - the status page's small helpers: building DOM nodes without
 * ever parsing data as HTML (h), and writing figures for a tired reader:
 * units on every number, local times with their age, one vocabulary of
 * states (tone + symbol + word, so colour is never the only signal).
 *
 * Everything is on window.Cutover.fmt; no state, no network.
 */
(function () {
	"use strict";

	/* h("tr", {class: "x", data: {version: "1.0.0"}}, child, "text", [more])
	 * -> an Element.  Strings become text nodes (never HTML); null, false
	 * and undefined children are skipped; arrays are flattened. */
	function h(tag, attrs, ...children) {
		const e = document.createElement(tag);
		for (const k in attrs || {}) {
			const v = attrs[k];
			if (v === null || v === undefined || v === false)
				continue;
			if (k === "data")
				for (const d in v) {
					if (v[d] !== null && v[d] !== undefined)
						e.dataset[d] = String(v[d]);
				}
			else if (k === "class")
				e.className = v;
			else if (k === "text")
				e.textContent = v;
			else if (k.startsWith("on"))
				e.addEventListener(k.slice(2), v);
			else
				e.setAttribute(k, v === true ? "" : String(v));
		}
		const add = (c) => {
			if (c === null || c === undefined || c === false)
				return;
			if (Array.isArray(c))
				c.forEach(add);
			else
				e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
		};
		children.forEach(add);
		return e;
	}

	const num = (v, digits) =>
		Number(v).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });

	/* 1234 -> "1,234" (the reader's locale) */
	function count(n) {
		return n === null || n === undefined ? "–" : Number(n).toLocaleString();
	}

	/* Requests per second: "0.2 req/s", "12.4 req/s", "1,204 req/s". */
	function rate(v, short) {
		if (v === null || v === undefined)
			return "–";
		const s = v === 0 ? "0" : v < 100 ? num(v, 1) : num(v, 0);
		return short ? s : `${s} req/s`;
	}

	/* A ratio 0..1 as a percentage: "0 %", "0.12 %", "5.3 %", "100 %". */
	function ratio(v, short) {
		if (v === null || v === undefined)
			return "–";
		const p = v * 100;
		const s = p === 0 ? "0" : p < 1 ? num(p, 2) : p < 10 ? num(p, 1) : num(p, 0);
		return `${s} %`;
	}

	/* A percentage already 0..100: "20 %", "19.6 %". */
	function percent(p) {
		if (p === null || p === undefined)
			return "–";
		return `${Number.isInteger(p) ? p : num(p, 1)} %`;
	}

	/* Milliseconds of latency: "0.38 ms", "12 ms", "1.25 s". */
	function ms(v) {
		if (v === null || v === undefined)
			return "–";
		if (v >= 1000)
			return `${num(v / 1000, 2)} s`;
		if (v >= 10)
			return `${num(v, 0)} ms`;
		return `${num(v, v === 0 ? 0 : v < 1 ? 2 : 1)} ms`;
	}

	/* A duration in ms: "850 ms", "13.3 s", "2 min 05 s", "3 h 04 min", "2 d 3 h". */
	function duration(v) {
		if (v === null || v === undefined || !isFinite(v))
			return "–";
		if (v < 1000)
			return `${Math.round(v)} ms`;
		const s = v / 1000;
		if (s < 60)
			return `${num(s, v % 1000 ? 1 : 0)} s`;
		const m = Math.floor(s / 60), sec = Math.floor(s % 60);
		if (m < 60)
			return sec ? `${m} min ${String(sec).padStart(2, "0")} s` : `${m} min`;
		const hr = Math.floor(m / 60);
		if (hr < 48)
			return `${hr} h ${String(m % 60).padStart(2, "0")} min`;
		return `${Math.floor(hr / 24)} d ${hr % 24} h`;
	}

	/* How long ago (or, for a future time, in how long): "just now",
	 * "12 s ago", "4 min ago", "3 h ago", "in 5 s". */
	function age(at, now) {
		const d = now - at;
		const a = Math.abs(d);
		let s;
		if (a < 2000)
			return "just now";
		if (a < 60000)
			s = `${Math.floor(a / 1000)} s`;
		else if (a < 3600000)
			s = `${Math.floor(a / 60000)} min`;
		else if (a < 172800000)
			s = `${Math.floor(a / 3600000)} h`;
		else
			s = `${Math.floor(a / 86400000)} d`;
		return d >= 0 ? `${s} ago` : `in ${s}`;
	}

	/* Local wall-clock time; with the date when it is not today. */
	function clock(at) {
		const d = new Date(at), today = new Date();
		const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit",
			hour12: false });
		if (d.toDateString() === today.toDateString())
			return t;
		return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${t}`;
	}

	/* <time> showing "08:30:32 · 2 min ago"; the page's ticker keeps the
	 * age current (data-at). */
	function when(at, opts) {
		if (!at)
			return h("span", { class: "muted" }, "–");
		const t = h("time", { datetime: new Date(at).toISOString(), title: new Date(at).toString(),
			data: { at: at, style: (opts && opts.style) || "both" } });
		t.textContent = whenText(at, t.dataset.style);
		return t;
	}

	function whenText(at, style) {
		const now = Date.now() + (window.Cutover.skew || 0);
		if (style === "age")
			return age(at, now);
		return `${clock(at)} · ${age(at, now)}`;
	}

	/* Every state name the daemon uses -> [tone, symbol, words].  Tones:
	 * ok, warn, bad, info, idle.  Symbols repeat the tone for readers who
	 * do not see the colour. */
	const STATES = {
		healthy: ["ok", "●", "healthy"],
		running: ["ok", "●", "running"],
		pass: ["ok", "✓", "pass"],
		done: ["ok", "✓", "done"],
		live: ["ok", "●", "live"],
		succeeded: ["ok", "✓", "succeeded"],
		unhealthy: ["bad", "✕", "unhealthy"],
		failed: ["bad", "✕", "failed"],
		fail: ["bad", "✕", "fail"],
		down: ["bad", "✕", "down"],
		crashed: ["bad", "✕", "crashed"],
		"rolled-back": ["bad", "↩", "rolled back"],
		aborted: ["bad", "↩", "aborted"],
		rejected: ["bad", "✕", "rejected"],
		expired: ["warn", "◷", "expired"],
		degraded: ["warn", "▲", "degraded"],
		restarting: ["warn", "↻", "restarting"],
		inconclusive: ["warn", "?", "inconclusive"],
		"not judged": ["idle", "–", "not judged"],
		unknown: ["idle", "?", "unknown"],
		starting: ["info", "◔", "starting"],
		stopping: ["idle", "◌", "stopping"],
		stopped: ["idle", "◌", "stopped"],
		"health-checking": ["info", "◑", "health-checking"],
		"smoke-testing": ["info", "◑", "smoke-testing"],
		switching: ["info", "◕", "switching"],
		switched: ["info", "◕", "switched, watching"],
		"awaiting-approval": ["warn", "‖", "awaiting approval"],
		paused: ["warn", "‖", "paused"],
		maintenance: ["warn", "⚠", "maintenance"],
		"rolling-back": ["warn", "↩", "rolling back"],
		warm: ["idle", "◌", "warm"],
		started: ["info", "◔", "started"],
		adopted: ["info", "◔", "adopted"],
		restarted: ["warn", "↻", "restarted"],
		analysis: ["info", "⚖", "analysis"],
		promoted: ["ok", "»", "promoted"],
		approved: ["ok", "✓", "approved"],
		resumed: ["info", "▶", "resumed"],
		extended: ["warn", "+", "extended"],
		aborting: ["warn", "↩", "aborting"],
		warning: ["warn", "▲", "warning"],
		draining: ["idle", "◌", "draining"],
		step: ["info", "◕", "step"],
	};

	function stateOf(name) {
		return STATES[name] || ["idle", "•", String(name || "unknown").replace(/-/g, " ")];
	}

	/* A badge: symbol and words, toned; data-state keeps the raw name. */
	function badge(name, words) {
		const [tone, sym, text] = stateOf(name);
		return h("span", { class: `badge tone-${tone}`, data: { state: name } },
			h("span", { class: "sym", "aria-hidden": "true" }, sym), " ", words || text);
	}

	window.Cutover = window.Cutover || {};
	window.Cutover.skew = 0;
	/* "1 restart", "3 restarts" */
	const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

	window.Cutover.fmt = { h, count, rate, ratio, percent, ms, duration, age, clock, when, whenText, badge, stateOf,
		plural };
})();
