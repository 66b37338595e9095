/* history.js - the status page's lists: the deploy history with each
 * deploy's phases, the releases in flight, and the events of the stream
 * as they come.  Plain functions from app.js's `data` to DOM nodes.
 *
 *   Cutover.history.deployments(data, open)  the table; open: the Set of
 *       deploy ids whose phases are unfolded (kept across refreshes)
 *   Cutover.history.releases(data)           the releases in flight
 *   Cutover.history.feed(data)               the last events, newest first
 *
 * Hooks: #history tr[data-deploy-id][data-state], tr[data-phases-of] with
 * [data-reason] and li[data-phase]; li[data-kind] in the feed.
 */
(function () {
	"use strict";

	const { h, duration, when, clock, badge, stateOf } = window.Cutover.fmt;

	function deployments(data, open) {
		const list = data.deployments || [];
		const err = data.errors["/v1/deployments"];
		if (err)
			return h("p", { class: "load-error" }, badge("unknown", "not read"),
				` The deploy history could not be read (/v1/deployments: ${err}); ` +
				"it is read again on the next deploy event, or in 30 s.");
		if (!list.length)
			return h("p", { class: "muted" }, "No deploy recorded yet.");
		const rows = [];
		for (const d of list) {
			const finished = !!d.finished_at;
			const change = d.from && d.from !== d.to ? `${d.from} → ${d.to}` : d.to;
			const kind = d.kind && d.kind !== "deploy" ? h("span", { class: "muted" }, ` (${d.kind})`)
				: null;
			const took = d.duration_ms ?? (finished ? d.finished_at - d.started_at : null);
			const result = finished ? badge(d.state)
				: badge(d.state, `in progress: ${stateOf(d.state)[2]}`);
			const reason = d.reason ? h("p", { class: "reason", data: { reason: "" } },
				h("span", { class: "muted" }, "Reason: "), d.reason) : null;
			const data = { deployId: d.id, state: d.state, service: d.service };
			rows.push(h("tr", { class: "dep", data },
				h("th", { scope: "row" }, `#${d.id}`),
				h("td", {}, d.service),
				h("td", {}, change, kind),
				h("td", {}, d.strategy || "–"),
				h("td", {}, result),
				h("td", {}, clock(d.started_at),
					h("div", { class: "muted small" }, when(d.started_at, { style: "age" }))),
				h("td", { class: "num" },
					finished ? duration(took) : h("span", { class: "muted" }, "running"))));
			rows.push(h("tr", { class: "dep-more", data: { phasesOf: d.id } },
				h("td", {}), h("td", { colspan: 6 }, reason, phases(d, open))));
		}
		const heads = ["Deploy", "Service", "Change", "Strategy", "Result", "Started", "Took"];
		return h("div", { class: "table-wrap" }, h("table", { class: "history" },
			h("thead", {}, h("tr", {},
				heads.map((c, i) => h("th", { scope: "col", class: i === 6 ? "num" : "" }, c)))),
			h("tbody", {}, rows)));
	}

	/* A deploy's phases: a bar (widths by duration) and, on demand, the list. */
	function phases(d, open) {
		const ph = d.phases || [];
		const total = ph.reduce((a, p) => a + Math.max(0, p.duration_ms || 0), 0) || 1;
		const bar = h("div", { class: "phase-bar", "aria-hidden": "true" }, ph.map((p) => {
			const seg = h("span", { class: `tone-bg-${stateOf(p.phase)[0]}`,
				title: `${p.phase}: ${duration(p.duration_ms)}` });
			seg.style.flexGrow = String(Math.max(total / 60, p.duration_ms || 0));
			return seg;
		}));
		const det = h("details", { data: { deployId: d.id }, open: open.has(d.id) || null },
			h("summary", {}, `${ph.length} phase${ph.length === 1 ? "" : "s"}`, bar),
			h("ol", { class: "phase-list" }, ph.map((p) => h("li", { data: { phase: p.phase } },
				h("span", { class: "ph-name" }, badge(p.phase)),
				h("span", { class: "ph-at" }, clock(p.at)),
				h("span", { class: "ph-dur num" }, duration(p.duration_ms)),
				h("span", { class: "ph-detail" }, p.detail || "")))));
		det.addEventListener("toggle", () => (det.open ? open.add(d.id) : open.delete(d.id)));
		return det;
	}

	function releases(data) {
		const list = (data.status && data.status.releases) || [];
		return h("ul", { class: "releases" }, list.map((r) =>
			h("li", { data: { releaseId: r.id, state: r.state } },
				badge(r.state === "running" ? "switching" : r.state, r.state.replace(/-/g, " ")),
				` release #${r.id} ${r.name}: group ${r.group} of ${r.groups}`)));
	}

	/* [state, text, badge words or undefined] of one event of the stream. */
	function feedText(e) {
		const d = e.data || {};
		switch (e.kind) {
		case "hello":
			return [null, `connected to cutover ${d.version} (pid ${d.pid})`];
		case "deployment": {
			let state = d.result || d.phase;
			if (d.phase === "analysis") {
				const said = d.detail || "";
				state = /fail/.test(said) ? "fail" : /pass/.test(said) ? "pass" : "inconclusive";
			}
			const reason = d.reason && d.reason !== d.detail ? d.reason : "";
			const what = [d.detail, reason].filter(Boolean).join(": ");
			const kind = d.kind && d.kind !== "deploy" ? ` (${d.kind})` : "";
			return [state, `#${d.id} ${d.service} ${d.version}${kind}${what ? `: ${what}` : ""}`];
		}
		case "instance":
			return [d.state, `${d.service} ${d.version} :${d.port}${d.pid ? ` (pid ${d.pid})` : ""}` +
				(d.detail ? `: ${d.detail}` : "")];
		case "maintenance": {
			const m = d.maintenance;
			if (!m)
				return ["live", `${d.service}: traffic flows again`, "maintenance off"];
			return ["maintenance", `${d.service}: answering 503 (Retry-After ${m.retry_after} s` +
				`${m.page ? ", its own page" : ""})${m.by ? `, by ${m.by}` : ""}`, "maintenance on"];
		}
		case "release":
			return [d.phase, `release #${d.id} ${d.name || ""}${d.detail ? `: ${d.detail}` : ""}`];
		default:
			return [null, `${e.kind}: ${JSON.stringify(d).slice(0, 200)}`];
		}
	}

	function feed(data) {
		if (!data.feed.length)
			return h("p", { class: "muted" }, "Nothing has happened since this page opened.");
		return h("ol", { class: "feed" }, data.feed.map((e) => {
			const [state, text, words] = feedText(e);
			const b = state ? badge(state, words) : h("span", { class: "badge tone-idle" }, e.kind);
			return h("li", { data: { kind: e.kind } },
				h("span", { class: "feed-at" }, when(e.at)), b, " ", text);
		}));
	}

	window.Cutover.history = { deployments, releases, feed };
})();
