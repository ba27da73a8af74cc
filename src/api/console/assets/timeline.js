// complaint-ledger console — a case's history as one picture.
//
// Swimlanes over a time axis in the business line's local time: the
// customer's contacts by channel, each demand and each promise as a span
// from when it was made to when it ended or fell due (kept, broken with its
// reasons, or open), what staff did, each ticket's way through the second
// line, the warnings and the escalation that answered each (or none), and
// corrections linked to what they correct. Days are shaded as the case's
// calendar has them: weekends, holidays, 调休 make-up working days.
//
// It draws the CaseView the server judged (GetCase, as of a version or a
// time) — the picture never re-judges a promise itself.
"use strict";
var CL = window.CL || (window.CL = {});

CL.timeline = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const DAY = 86400000;
  const LANE = 24;
  const LABEL_W = 190;

  const CHANNELS = {
    CHANNEL_HOTLINE: "hotline 热线",
    CHANNEL_QQ: "QQ",
    CHANNEL_ONLINE_CHAT: "online chat 在线",
    CHANNEL_SMS: "SMS 短信",
    CHANNEL_VISIT: "visit 上门",
    CHANNEL_OUTBOUND_CALL: "phone call 外呼",
    CHANNEL_LETTER: "letter",
  };
  const REASONS = {
    BREACH_REASON_LATE: "late",
    BREACH_REASON_WRONG_CHANNEL: "wrong channel",
    BREACH_REASON_OUTSIDE_WINDOW: "outside the demanded hours",
    BREACH_REASON_NEVER_DONE: "never done",
    BREACH_REASON_WRONG_PARTY: "wrong party",
    BREACH_REASON_REFUSED: "refused",
  };

  function channel(c) {
    return CHANNELS[c] || (c || "unspecified").replace(/^CHANNEL_/, "").toLowerCase();
  }

  function reason(r) {
    return REASONS[r] || String(r || "").replace(/^BREACH_REASON_/, "").toLowerCase();
  }

  function ms(t) {
    if (!t) return NaN;
    return Date.parse(t);
  }

  function el(name, attrs, parent, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    }
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function titled(e, text) {
    el("title", {}, e, text);
    return e;
  }

  // "2020-12-03 01:24" in the calendar's offset.
  function local(t, offsetMin) {
    if (!Number.isFinite(t)) return "";
    const d = new Date(t + offsetMin * 60000);
    return d.toISOString().slice(0, 16).replace("T", " ");
  }

  // Every time the picture shows, to size the axis.
  function timesOf(view, events) {
    const out = [];
    const add = (t) => {
      const v = ms(t);
      if (Number.isFinite(v)) out.push(v);
    };
    for (const e of events) add(e.occurredAt);
    for (const p of view.promises || []) {
      add(p.madeAt);
      add(p.promise && p.promise.dueAt);
      add(p.answeredAt);
    }
    for (const d of view.demands || []) {
      add(d.recordedFor);
      add(d.endedAt);
    }
    return out;
  }

  // Draws the case. `model`: {view, events, calendar}; returns the <svg>.
  function draw(model, opts) {
    const view = model.view,
      events = model.events || [];
    const cal = model.calendar || { utcOffsetMinutes: 480, days: [] };
    const off = Number(cal.utcOffsetMinutes || 0);
    const byId = new Map(events.map((e) => [e.eventId, e]));
    const evaluated = ms(view.evaluatedAt);
    const times = timesOf(view, events);
    if (!times.length) times.push(Date.now());
    // Local midnights around the first and last time.
    const dayOf = (t) => Math.floor((t + off * 60000) / DAY);
    const midnight = (day) => day * DAY - off * 60000;
    const first = dayOf(Math.min(...times)),
      last = dayOf(Math.max(...times));
    const start = midnight(first),
      end = midnight(last + 1);
    const width = Math.max(900, (opts && opts.width) || 1100);
    const plot = width - LABEL_W - 16;
    const x = (t) => LABEL_W + ((t - start) / (end - start)) * plot;

    // The lanes, top to bottom.
    const lanes = [];
    const lane = (group, label, cls) => {
      const l = { group, label, cls, y: 0 };
      lanes.push(l);
      return l;
    };
    const contacts = view.contacts || [];
    const contactChannels = [...new Set(contacts.map((c) => c.contact && c.contact.channel))];
    const contactLane = new Map(contactChannels.map((c) => [c, lane("Customer contacts", channel(c), "lane-contact")]));
    const demandLanes = (view.demands || []).map((d) => lane("Demands", "demand " + ((d.demand && d.demand.demandId) || ""), "lane-demand"));
    const promiseLanes = (view.promises || []).map((p) => lane("Promises", "promise " + ((p.promise && p.promise.promiseId) || ""), "lane-promise"));
    const staff = lane("Staff", "callbacks, notes, owner", "lane-staff");
    const ticketLanes = (view.tickets || []).map((t) => lane("Second line", "ticket " + t.ticketId + (t.team ? " → " + t.team : ""), "lane-ticket"));
    const policy = lane("Policy", "warnings, escalations", "lane-policy");
    const judged = (view.judgements || []).length || (view.resolutions || []).length ? lane("Policy", "judgements, resolution", "lane-policy") : null;
    const corrections = lane("Corrections", "corrections", "lane-correction");

    const axisH = 46;
    let y = axisH;
    let lastGroup = null;
    for (const l of lanes) {
      if (l.group !== lastGroup) y += 16;
      l.groupStart = l.group !== lastGroup;
      lastGroup = l.group;
      l.y = y + LANE / 2;
      y += LANE;
    }
    const height = y + 20;

    const svg = el("svg", {
      xmlns: NS,
      viewBox: "0 0 " + width + " " + height,
      width: "100%",
      class: "timeline",
      role: "img",
      "aria-label": "Timeline of case " + view.caseId,
    });
    titled(svg, "Case " + view.caseId + " as of version " + view.version);

    // Days: shading and the axis.
    const days = new Map((cal.days || []).map((d) => [d.date, d]));
    const dayCount = last - first + 1;
    const every = Math.max(1, Math.ceil(dayCount / 24));
    const shade = el("g", { class: "days" }, svg);
    for (let d = first; d <= last; d++) {
      const date = new Date(d * DAY).toISOString().slice(0, 10);
      const info = days.get(date) || {};
      const x0 = x(midnight(d)),
        x1 = x(midnight(d + 1));
      let cls = "day";
      let what = "working day";
      if (info.uncovered) {
        cls += " day-uncovered";
        what = "not covered by the calendar";
      } else if (info.makeup) {
        cls += " day-makeup";
        what = "调休: a weekend day worked";
      } else if (info.holiday) {
        cls += " day-holiday";
        what = "holiday: " + info.holiday;
      } else if (info.weekend || info.working === false) {
        cls += " day-weekend";
        what = "weekend";
      }
      if (info.provisional) what += " (provisional)";
      titled(el("rect", { x: x0, y: axisH - 6, width: Math.max(0, x1 - x0), height: height - axisH, class: cls, "data-date": date }, shade), date + " — " + what);
      el("line", { x1: x0, x2: x0, y1: axisH - 6, y2: height - 14, class: "day-line" }, shade);
      if ((d - first) % every === 0) {
        const wd = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][new Date(d * DAY).getUTCDay()];
        el("text", { x: x0 + 3, y: 16, class: "axis-date" }, shade, wd + " " + date.slice(5));
        const mark = info.makeup ? "调休 worked" : info.holiday ? info.holiday : "";
        if (mark) el("text", { x: x0 + 3, y: 32, class: "axis-mark" }, shade, mark);
      }
    }
    el("text", { x: 4, y: 16, class: "axis-title" }, svg, "local time UTC" + (off >= 0 ? "+" : "-") + Math.abs(off / 60));

    // Lane labels and rules.
    const labels = el("g", { class: "lanes" }, svg);
    for (const l of lanes) {
      if (l.groupStart) el("text", { x: 4, y: l.y - LANE / 2 - 3, class: "lane-group" }, labels, l.group);
      el("text", { x: 12, y: l.y + 4, class: "lane-label" }, labels, l.label);
      el("line", { x1: LABEL_W, x2: width - 16, y1: l.y, y2: l.y, class: "lane-rule " + l.cls }, labels);
    }

    const marks = el("g", { class: "marks" }, svg);
    const at = new Map(); // event id -> {x, y}
    const mark = (shape, id, t, l, cls, title, extra) => {
      const cx = x(t),
        cy = l.y;
      let e;
      if (shape === "circle") e = el("circle", { cx, cy, r: 6 }, marks);
      else if (shape === "ring") e = el("circle", { cx, cy, r: 6 }, marks);
      else if (shape === "diamond") e = el("path", { d: `M${cx} ${cy - 8}L${cx + 7} ${cy}L${cx} ${cy + 8}L${cx - 7} ${cy}Z` }, marks);
      else if (shape === "triangle") e = el("path", { d: `M${cx} ${cy - 8}L${cx + 8} ${cy + 6}L${cx - 8} ${cy + 6}Z` }, marks);
      else if (shape === "cross") e = el("path", { d: `M${cx - 6} ${cy - 6}L${cx + 6} ${cy + 6}M${cx + 6} ${cy - 6}L${cx - 6} ${cy + 6}` }, marks);
      else e = el("rect", { x: cx - 5, y: cy - 5, width: 10, height: 10 }, marks);
      e.setAttribute("class", "mark " + shape + " " + cls);
      if (id) {
        e.setAttribute("data-event-id", id);
        if (!at.has(id)) at.set(id, { x: cx, y: cy });
      }
      for (const [k, v] of Object.entries(extra || {})) e.setAttribute(k, v);
      titled(e, local(t, off) + " — " + title);
      return e;
    };
    const span = (l, t0, t1, cls, title, id) => {
      const x0 = x(t0),
        x1 = Math.max(x(t1), x0 + 3);
      const r = el("rect", { x: x0, y: l.y - 7, width: x1 - x0, height: 14, rx: 3, class: "span " + cls }, marks);
      if (id) r.setAttribute("data-event-id", id);
      titled(r, title);
      return r;
    };

    // Contacts.
    for (const c of contacts) {
      const k = c.contact || {};
      const t = ms(k.startedAt) || ms((byId.get(c.eventId) || {}).occurredAt);
      const inbound = k.direction === "DIRECTION_INBOUND";
      const who = (c.party && c.party.id) || k.agentId || "";
      mark(inbound ? "circle" : "ring", c.eventId, t, contactLane.get(k.channel), "contact " + (inbound ? "inbound" : "outbound") + (c.uncoordinated ? " uncoordinated" : ""), (inbound ? "the customer contacted us" : "we contacted the customer") + " by " + channel(k.channel) + (who ? " (" + who + ")" : "") + (k.customerEmotion ? ", " + k.customerEmotion.replace("EMOTION_", "").toLowerCase() : "") + (c.uncoordinated ? ", uncoordinated" : ""), { "data-channel": k.channel || "" });
    }

    // Demands: made -> ended, fulfilled, or still open at the evaluation time.
    (view.demands || []).forEach((d, i) => {
      const l = demandLanes[i];
      const dm = d.demand || {};
      const t0 = ms(d.recordedFor);
      const fulfilled = d.fulfilledByEventId && byId.get(d.fulfilledByEventId);
      const t1 = ms(d.endedAt) || (fulfilled && ms(fulfilled.occurredAt)) || (Number.isFinite(evaluated) ? evaluated : end);
      const state = (d.state || "DEMAND_STATE_OPEN").replace("DEMAND_STATE_", "").toLowerCase();
      const wants = dm.requiredChannel ? "wants " + channel(dm.requiredChannel) : "";
      const refused = (dm.refusedChannels || []).map(channel).join(", ");
      const s = span(l, t0, Math.min(Math.max(t1, t0), end), "demand demand-" + state, "demand " + (dm.demandId || "") + ": " + (dm.description || "") + (wants ? " — " + wants : "") + (refused ? ", not " + refused : "") + " — " + state, d.eventId);
      s.setAttribute("data-demand-id", dm.demandId || "");
      mark("circle", d.eventId, t0, l, "demand-made", "demand made: " + (dm.description || ""));
      el("text", { x: x(t0) + 9, y: l.y - 9, class: "span-label" }, marks, (wants || "demand") + " · " + state);
      for (const b of d.breaches || []) {
        mark("cross", b.eventId, ms(b.at), l, "breach", channel(b.channel) + " instead (" + reason(b.reason) + ")", { "data-channel": b.channel || "", "data-demand-id": dm.demandId || "" });
      }
    });

    // Promises: made -> due; kept, broken (why), or open.
    (view.promises || []).forEach((p, i) => {
      const l = promiseLanes[i];
      const pm = p.promise || {};
      const t0 = ms(p.madeAt),
        due = ms(pm.dueAt);
      const state = (p.state || "PROMISE_STATE_OPEN").replace("PROMISE_STATE_", "").toLowerCase();
      const reasons = (p.breachReasons || []).map(reason);
      const label = state + (reasons.length ? ": " + reasons.join(", ") : "");
      const t1 = Number.isFinite(due) ? due : t0;
      const s = span(l, t0, t1, "promise promise-" + state, "promise " + (pm.promiseId || "") + ": " + (pm.description || "") + " — due " + local(due, off) + (pm.dueProvisional ? " (provisional calendar)" : "") + " — " + label, p.eventId);
      s.setAttribute("data-promise-id", pm.promiseId || "");
      s.setAttribute("data-state", state);
      mark("circle", p.eventId, t0, l, "promise-made", "promise made: " + (pm.description || ""));
      if (Number.isFinite(due)) mark("rect", null, due, l, "promise-due promise-" + state, "due" + (pm.dueProvisional ? " (provisional)" : ""));
      el("text", { x: x(t0) + 9, y: l.y - 9, class: "span-label promise-label-" + state }, marks, label);
      if (p.answeredAt) mark("circle", p.answeredByEventId, ms(p.answeredAt), l, "answer", "answered by " + channel(p.answeredOn));
    });

    // Staff: callbacks, notes, owner, resolution steps.
    for (const cb of view.callbacks || []) {
      mark(cb.reached ? "ring" : "cross", cb.eventId, ms(cb.at), staff, "callback" + (cb.reached ? " reached" : " unreached") + (cb.uncoordinated ? " uncoordinated" : ""), (cb.eventType || "callback") + " by " + channel(cb.channel) + (cb.reached ? ", reached" : ", not reached") + (cb.promiseId ? ", for promise " + cb.promiseId : ""), { "data-channel": cb.channel || "" });
    }
    for (const n of view.notes || []) mark("rect", n.eventId, ms(n.at), staff, "note", "note: " + (n.text || ""));
    for (const e of events) {
      const k = e.event || {};
      if (k.ownerAssigned) mark("rect", e.eventId, ms(e.occurredAt), staff, "owner", "owner: " + ((k.ownerAssigned.owner || {}).id || ""));
    }

    // Tickets: submitted -> rejected -> appended -> result.
    (view.tickets || []).forEach((t, i) => {
      const l = ticketLanes[i];
      const steps = t.history || [];
      for (let s = 1; s < steps.length; s++) el("line", { x1: x(ms(steps[s - 1].at)), x2: x(ms(steps[s].at)), y1: l.y, y2: l.y, class: "ticket-path" }, marks);
      for (const s of steps) {
        const kind = (s.eventType || "").replace("Ticket", "").toLowerCase();
        const shape = kind === "rejected" ? "cross" : kind === "resultgiven" ? "diamond" : "rect";
        mark(shape, s.eventId, ms(s.at), l, "ticket ticket-" + kind, (s.eventType || "") + (s.detail ? ": " + s.detail : "") + ((s.fields || []).length ? " [" + s.fields.join(", ") + "]" : ""));
      }
    });

    // Policy: warnings and the escalation that answered each.
    const escalations = view.escalations || [];
    for (const esc of escalations) {
      const e = esc.escalation || {};
      mark("diamond", esc.eventId, ms(esc.at), policy, "escalation", "escalated to " + String(e.toLevel || "").replace("ESCALATION_LEVEL_", "").toLowerCase() + (e.toWhom ? " (" + e.toWhom + ")" : "") + (e.reason ? ": " + e.reason : ""));
    }
    let lastUnansweredLabel = -Infinity;
    for (const w of view.warnings || []) {
      const wr = w.warning || {};
      const withdrawn = !!w.withdrawnByEventId;
      const answer = escalations.find((esc) => (esc.escalation || {}).warningId === wr.warningId);
      const cls = "warning" + (withdrawn ? " withdrawn" : answer ? " answered" : " unanswered");
      mark("triangle", w.eventId, ms(w.at), policy, cls, "warning " + (wr.rule || "") + ": " + (wr.reason || "") + (withdrawn ? " — withdrawn: " + (w.withdrawalReason || "") : answer ? " — answered by an escalation" : " — no escalation answered it"), { "data-rule": wr.rule || "" });
      if (answer) {
        el("path", { d: `M${x(ms(w.at))} ${policy.y - 8} Q ${(x(ms(w.at)) + x(ms(answer.at))) / 2} ${policy.y - 22} ${x(ms(answer.at))} ${policy.y - 8}`, class: "answer-link" }, marks);
      } else if (!withdrawn && x(ms(w.at)) > lastUnansweredLabel + 70) {
        // One label per stretch: warnings close together share it.
        lastUnansweredLabel = x(ms(w.at));
        el("text", { x: x(ms(w.at)) + 9, y: policy.y - 9, class: "span-label unanswered-label" }, marks, "unanswered");
      }
    }
    if (judged) {
      for (const j of view.judgements || []) mark("diamond", j.eventId, ms((byId.get(j.eventId) || {}).occurredAt), judged, "judgement", "violation judged" + (j.appealed ? ", appealed" : "") + (j.upheld ? ", upheld" : ""));
      for (const r of view.resolutions || []) mark("rect", r.eventId, ms(r.resolvedAt), judged, "resolution" + (r.superseded ? " superseded" : ""), "resolved: " + (r.resolution || "") + (r.customerAccepted ? " (accepted)" : " (not accepted)"));
    }

    // Corrections, linked to what they correct.
    for (const e of events) {
      const c = (e.event || {}).eventCorrected;
      if (!c) continue;
      const t = ms(e.occurredAt);
      mark("rect", e.eventId, t, corrections, "correction", "corrects " + c.correctedEventId + ": " + (c.reason || ""));
      const target = at.get(c.correctedEventId);
      if (target) el("path", { d: `M${x(t)} ${corrections.y - 5} L${target.x} ${target.y + 6}`, class: "correction-link", "data-corrects": c.correctedEventId }, marks);
    }

    // The evaluation time the server judged at.
    if (Number.isFinite(evaluated) && evaluated >= start && evaluated <= end) {
      el("line", { x1: x(evaluated), x2: x(evaluated), y1: axisH - 6, y2: height - 14, class: "evaluated" }, svg);
      el("text", { x: x(evaluated) - 4, y: 42, class: "evaluated-label", "text-anchor": "end" }, svg, "judged as of " + local(evaluated, off));
    }
    return svg;
  }

  return { draw, local, channel, reason };
})();
