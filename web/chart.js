/* chart.js - the status page's line charts, drawn as SVG by hand (no
 * library, no network).
 *
 * CutoverChart.draw(figure, spec) fills a <figure> with an <svg> of one
 * metric over time: a line per series (a version), a gap where a series
 * has no point for longer than two intervals, a dot on a point with no
 * neighbour, time ticks in local time, "nice" value ticks with units,
 * vertical markers (deploys), and a hover rule that names every series'
 * value at that time.  The <svg> carries data-points (how many points it
 * draws) and each line data-version and data-points, for the browser test.
 *
 * spec = {title, unit: (value, short) => "text", series: [{label, cls, dash,
 *   points: [[t_ms, value], ...] oldest first, value null = no figure}],
 *   domain: [t0_ms, t1_ms], interval_ms, markers: [{t, label}],
 *   floor: the least top of the value axis (so a flat 0 is not a full-height line)}
 * A series' colour comes from the stylesheet through its class (cls), so
 * that it follows the light or dark theme; its dash tells it apart without
 * colour.
 */
(function () {
	"use strict";

	const SVG = "http://www.w3.org/2000/svg";
	const HEIGHT = 190;
	const PAD = { left: 64, right: 14, top: 12, bottom: 26 };

	/* Whether v is a figure to draw (null: no figure for that interval). */
	const figure = (v) => v !== null && v !== undefined && isFinite(v);

	function el(name, attrs, parent) {
		const e = document.createElementNS(SVG, name);
		for (const k in attrs)
			e.setAttribute(k, attrs[k]);
		if (parent)
			parent.appendChild(e);
		return e;
	}

	/* Up to about `count` round tick values from 0 to at least max. */
	function valueTicks(max, count) {
		if (!(max > 0))
			max = 1;
		const raw = max / count;
		const mag = Math.pow(10, Math.floor(Math.log10(raw)));
		const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
		const top = Math.ceil(max / step - 1e-9) * step;
		const ticks = [];
		for (let v = 0; v <= top + step / 2; v += step)
			ticks.push(Number(v.toPrecision(12)));
		return ticks;
	}

	/* Time ticks on round minutes between t0 and t1 (ms). */
	function timeTicks(t0, t1, width) {
		const span = t1 - t0;
		const minutes = [0.25, 0.5, 1, 2, 5, 10, 15, 30, 60];
		const want = Math.max(2, Math.floor(width / 90));
		const stepMin = minutes.find((m) => span / (m * 60000) <= want) || 60;
		const step = stepMin * 60000;
		const ticks = [];
		for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step)
			ticks.push(t);
		return ticks;
	}

	function clock(t, seconds) {
		const d = new Date(t);
		const o = { hour: "2-digit", minute: "2-digit", hour12: false };
		if (seconds)
			o.second = "2-digit";
		return d.toLocaleTimeString([], o);
	}

	/* The SVG path of one series: a run of points closer than `gap` ms is
	 * one line; a point alone is returned in `lone` (drawn as a dot). */
	function pathOf(points, x, y, gap) {
		let d = "", run = [];
		const lone = [];
		const flush = () => {
			if (run.length === 1)
				lone.push(run[0]);
			else if (run.length > 1)
				d += run.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`)
					.join("");
			run = [];
		};
		let prev = null;
		for (const p of points) {
			if (!figure(p[1])) {
				flush();
				prev = null;
				continue;
			}
			if (prev && p[0] - prev[0] > gap)
				flush();
			run.push(p);
			prev = p;
		}
		flush();
		return { d, lone };
	}

	/* An SVG <text> in parent holding str (as text, never markup). */
	function text(parent, attrs, str) {
		const t = el("text", attrs, parent);
		t.textContent = str;
		return t;
	}

	function draw(fig, spec) {
		const width = Math.max(260, Math.floor(fig.clientWidth || 480));
		const [t0, t1] = spec.domain;
		const gap = 2.5 * (spec.interval_ms || 5000);
		const shown = spec.series.map((s) => s.points.filter((p) => p[0] >= t0 && figure(p[1])));
		const npoints = shown.reduce((a, pts) => a + pts.length, 0);
		const max = Math.max(spec.floor || 0, ...shown.flat().map((p) => p[1]));
		const ticks = valueTicks(max, 4);
		const top = ticks[ticks.length - 1];
		const left = PAD.left, right = width - PAD.right, up = PAD.top, down = HEIGHT - PAD.bottom;
		const x = (t) => left + ((t - t0) / (t1 - t0)) * (right - left);
		const y = (v) => down - (v / top) * (down - up);

		const svg = el("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img",
			"data-points": npoints, class: "chart-svg" });
		const now = spec.series.map((s, i) => {
			const p = shown[i][shown[i].length - 1];
			return `${s.label} ${p ? spec.unit(p[1]) : "no data"}`;
		});
		svg.setAttribute("aria-label", `${spec.title}: ${now.join(", ") || "no data"}`);

		const grid = el("g", { class: "grid" }, svg);
		for (const v of ticks) {
			el("line", { x1: left, x2: right, y1: y(v), y2: y(v) }, grid);
			text(grid, { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" },
				spec.unit(v, true));
		}
		for (const t of timeTicks(t0, t1, right - left)) {
			el("line", { x1: x(t), x2: x(t), y1: up, y2: down, class: "vgrid" }, grid);
			text(grid, { x: x(t), y: HEIGHT - 8, "text-anchor": "middle", class: "tick" },
				clock(t, t1 - t0 < 180000));
		}
		for (const m of (spec.markers || []).filter((m) => m.t >= t0 && m.t <= t1)) {
			const g = el("g", { class: "marker" }, svg);
			el("line", { x1: x(m.t), x2: x(m.t), y1: up, y2: down }, g);
			text(g, { x: x(m.t) + 3, y: up + 10 }, m.label);
		}
		if (!npoints)
			text(svg, { x: (left + right) / 2, y: (up + down) / 2, "text-anchor": "middle",
				class: "empty" }, "no requests in this window yet");
		spec.series.forEach((s, i) => {
			const { d, lone } = pathOf(s.points.filter((p) => p[0] >= t0), x, y, gap);
			const g = el("g", { class: `series ${s.cls || ""}`, "data-version": s.label,
				"data-points": shown[i].length }, svg);
			if (d)
				el("path", { d, "stroke-dasharray": s.dash || "none", class: "line" }, g);
			for (const p of lone)
				el("circle", { cx: x(p[0]), cy: y(p[1]), r: 3 }, g);
		});
		el("line", { x1: left, x2: left, y1: up, y2: down, class: "axis" }, svg);
		el("line", { x1: left, x2: right, y1: down, y2: down, class: "axis" }, svg);
		hover(svg, spec, { x, t0, t1, left, right, up, down, width });
		return svg;
	}

	/* The hover rule and its readout: each series' point nearest the
	 * pointer (within an interval and a half). */
	function hover(svg, spec, g) {
		const rule = el("line", { y1: g.up, y2: g.down, class: "hover-rule", visibility: "hidden" }, svg);
		const box = el("g", { class: "hover-box", visibility: "hidden" }, svg);
		const bg = el("rect", { rx: 4 }, box);
		const readout = el("text", {}, box);
		const hit = el("rect", { x: g.left, y: g.up, width: g.right - g.left, height: g.down - g.up,
			fill: "transparent" }, svg);
		const near = (spec.interval_ms || 5000) * 1.5;
		const hide = () => {
			rule.setAttribute("visibility", "hidden");
			box.setAttribute("visibility", "hidden");
		};
		hit.addEventListener("mouseleave", hide);
		hit.addEventListener("mousemove", (ev) => {
			const px = ev.clientX - svg.getBoundingClientRect().left;
			const t = g.t0 + ((px - g.left) / (g.right - g.left)) * (g.t1 - g.t0);
			const lines = [];
			let at = null;
			for (const s of spec.series) {
				let best = null;
				for (const p of s.points)
					if (figure(p[1]) && (!best || Math.abs(p[0] - t) < Math.abs(best[0] - t)))
						best = p;
				if (best && Math.abs(best[0] - t) <= near) {
					lines.push(`${s.label}: ${spec.unit(best[1])}`);
					at = best[0];
				}
			}
			if (!lines.length)
				return hide();
			lines.unshift(clock(at, true));
			rule.setAttribute("x1", g.x(at));
			rule.setAttribute("x2", g.x(at));
			rule.setAttribute("visibility", "visible");
			readout.replaceChildren();
			lines.forEach((l, i) => {
				el("tspan", { x: 8, dy: i ? 16 : 15 }, readout).textContent = l;
			});
			const w = Math.max(...lines.map((l) => l.length)) * 7.4 + 16;
			bg.setAttribute("width", w);
			bg.setAttribute("height", 16 * lines.length + 8);
			const bx = g.x(at) + 10 + w > g.width ? g.x(at) - 10 - w : g.x(at) + 10;
			box.setAttribute("transform", `translate(${bx},${g.up})`);
			box.setAttribute("visibility", "visible");
		});
	}

	window.CutoverChart = { draw, valueTicks, timeTicks };
})();
