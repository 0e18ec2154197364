// The token life cycle as a picture: each access token's life as a bar, each refresh and rotation
// as a tick, and the idle window (the refresh token's lifetime) sliding forward with every refresh.
// Plain SVG drawn from the SDK's events; no library.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 800;
const LEFT = 118; // room for the lane labels
const RIGHT = 16;
/** Vertical centres; access tokens alternate between two rows so that overlapping lives show. */
const LANES = { access: 40, refresh: 84, idle: 114 };
const ROWS = [LANES.access - 9, LANES.access + 9];
const BAR = 15;
const HEIGHT = 172;
/** Older tokens scroll out: the picture stays readable after an hour of refreshes. */
const KEPT_TOKENS = 10;
/** Axis steps, smallest first: the first that gives at most six ticks is used. */
const STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400,
].map((s) => s * 1000);

/**
 * "6 d 23 h", "14 min 32 s", "29 s": the two largest units, so that a week-long idle window does not
 * read `604799 s`. Rounded up, so a countdown reaches "0 s" only when the time is over.
 */
export function duration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (days) return hours ? `${days} d ${hours} h` : `${days} d`;
  if (hours) return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  if (minutes) return seconds ? `${minutes} min ${seconds} s` : `${minutes} min`;
  return `${seconds} s`;
}

/**
 * About how wide a label is drawn, in viewBox units: to keep it inside the picture (and inside its
 * bar) before it is drawn. Generous, so that a wider font still fits.
 */
function textWidth(text, fontSize = 11) {
  return text.length * fontSize * 0.62;
}

function el(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** What the timeline remembers, fed by {@link Timeline.record}. */
export class Timeline {
  /** @param {SVGSVGElement} svg */
  constructor(svg) {
    this.svg = svg;
    svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    this.reset();
  }

  reset() {
    /** Access tokens: issued, expires, replaced (by the next one), number. */
    this.tokens = [];
    /** Idle windows: from each sign-in or rotation to the session's end if unused. */
    this.windows = [];
    /** Ticks: refreshes (with their trigger), refusals (401), sign-in and sign-out. */
    this.marks = [];
    this.endedAt = null;
    this.count = 0;
  }

  /** Takes in one event of the SDK (`rotor.subscribe`). */
  record(event, at = Date.now()) {
    if (event.type === 'signed-in') {
      this.reset();
      this.marks.push({ kind: 'signed-in', at });
    }
    if (event.type === 'signed-in' || event.type === 'refreshed') {
      const previous = this.tokens.at(-1);
      if (previous && previous.replacedAt === null) previous.replacedAt = at;
      this.count += 1;
      this.tokens.push({
        n: this.count,
        issuedAt: at,
        expiresAt: event.state.accessExpiresAt,
        replacedAt: null,
      });
      this.windows.push({ at, endsAt: event.state.refreshExpiresAt });
      if (event.type === 'refreshed')
        this.marks.push({ kind: 'refresh', at, trigger: event.trigger });
      this.tokens = this.tokens.slice(-KEPT_TOKENS);
      this.windows = this.windows.slice(-KEPT_TOKENS);
    }
    if (event.type === 'token-refused') this.marks.push({ kind: 'refused', at, code: event.code });
    if (event.type === 'signed-out' && this.tokens.length) {
      this.endedAt = at;
      this.marks.push({ kind: 'signed-out', at });
    }
    const first = this.tokens[0]?.issuedAt ?? at;
    this.marks = this.marks.filter((mark) => mark.at >= first);
  }

  /** Redraws for `now` (frozen at the sign-out once signed out). */
  draw(now = Date.now()) {
    const svg = this.svg;
    svg.replaceChildren();
    if (!this.tokens.length) return;
    const current = this.tokens.at(-1);
    const window = this.windows.at(-1);
    const at = this.endedAt ?? now;

    // The visible range: from the oldest token kept to a little past what matters next (the
    // current access token's expiry); the idle window's end too when it is near enough to fit.
    const start = this.tokens[0].issuedAt;
    let end = Math.max(at, this.endedAt ? at : current.expiresAt);
    end += (end - start) * 0.06 + 500;
    if (!this.endedAt && window.endsAt <= end + (end - start))
      end = window.endsAt + (window.endsAt - start) * 0.04;
    const x = (t) => LEFT + ((t - start) / (end - start)) * (WIDTH - LEFT - RIGHT);
    const clip = (t) => Math.min(WIDTH - RIGHT, Math.max(LEFT, x(t)));
    const top = ROWS[0] - BAR / 2 - 4;
    const bottom = LANES.idle + 24;

    // Axis: ticks relative to now, in human durations.
    const axis = el('g', { class: 'tl-axis' });
    const step = STEPS.find((s) => (end - start) / s <= 6) ?? STEPS.at(-1);
    for (let t = at - Math.floor((at - start) / step) * step; t <= end; t += step) {
      const offset = t - at;
      const label =
        Math.abs(offset) < 1 ? 'now' : `${offset < 0 ? '−' : '+'}${duration(Math.abs(offset))}`;
      // Centred under its grid line, except where that would cross the picture's right edge.
      const nearEdge = x(t) + textWidth(label) / 2 > WIDTH - 2;
      axis.append(
        el('line', { x1: x(t), x2: x(t), y1: top, y2: bottom, class: 'tl-grid' }),
        el(
          'text',
          {
            x: nearEdge ? WIDTH - 2 : x(t),
            y: HEIGHT - 6,
            'text-anchor': nearEdge ? 'end' : 'middle',
          },
          label,
        ),
      );
    }
    svg.append(axis);

    const labels = el('g', { class: 'tl-label' });
    labels.append(
      el('text', { x: 0, y: LANES.access + 4 }, 'Access tokens'),
      el('text', { x: 0, y: LANES.refresh + 4 }, 'Refresh token'),
      el('text', { x: 0, y: LANES.idle + 4 }, 'Idle window'),
    );
    svg.append(labels);

    // Access tokens: the life each was given (outlined), the part it was in use filled in, and in
    // red dashes the time after it expired before the next one came (no valid access token then).
    // Tokens alternate between two rows, so that a life cut short by an early refresh still shows.
    const bars = el('g', { class: 'tl-access' });
    for (const token of this.tokens) {
      const inUseUntil = Math.min(token.replacedAt ?? at, token.expiresAt);
      const live = token === current && !this.endedAt && at < token.expiresAt;
      const expiredFor = (token.replacedAt ?? at) - token.expiresAt;
      const group = el('g', {
        class: `access-bar${live ? ' live' : ''}${token.replacedAt === null && expiredFor > 0 ? ' expired' : ''}`,
        'data-token': token.n,
        'data-lived-ms': Math.round(inUseUntil - token.issuedAt),
      });
      const mid = ROWS[(token.n - 1) % 2];
      const y = mid - BAR / 2;
      const x0 = x(token.issuedAt);
      group.append(
        el('rect', {
          x: x0,
          y,
          // Clipped: after a sign-out the range ends there, before the last token would have.
          width: Math.max(0, clip(token.expiresAt) - x0),
          height: BAR,
          rx: 4,
          class: 'tl-life',
        }),
        el('rect', {
          x: x0,
          y,
          width: Math.max(2, clip(inUseUntil) - x0),
          height: BAR,
          rx: 4,
          class: 'tl-lived',
        }),
      );
      if (expiredFor > 0) {
        const x1 = x(token.expiresAt);
        const x2 = x(token.replacedAt ?? at);
        group.append(el('line', { x1, x2, y1: mid, y2: mid, class: 'tl-expired' }));
      }
      const replaced = token.replacedAt
        ? `, replaced after ${duration(token.replacedAt - token.issuedAt)}`
        : '';
      const life = duration(token.expiresAt - token.issuedAt);
      group.append(el('title', {}, `Access token #${token.n}: issued for ${life}${replaced}`));
      // The label sits wholly on one colour: white on the filled (lived) part once it fits there,
      // else dark on the pale part not lived yet, just after the filled part.
      const label = `#${token.n}`;
      const room = textWidth(label, 10) + 8;
      const livedEnd = Math.max(x0 + 2, clip(inUseUntil));
      const onLived = livedEnd - x0 >= room;
      const labelX = onLived ? x0 + 5 : livedEnd + 4;
      if (onLived || clip(token.expiresAt) - labelX >= room - 5) {
        group.append(
          el(
            'text',
            { x: labelX, y: mid + 3.5, class: `tl-bar-text ${onLived ? 'on-lived' : 'on-life'}` },
            label,
          ),
        );
      }
      bars.append(group);
    }
    svg.append(bars);

    // The refresh token: one at a time, each dying at the next rotation (a line, dots at rotations).
    const refresh = el('g', { class: 'tl-refresh' });
    refresh.append(
      el('line', {
        x1: x(start),
        x2: x(at),
        y1: LANES.refresh,
        y2: LANES.refresh,
        class: `tl-refresh-line${this.endedAt ? ' ended' : ''}`,
      }),
    );
    svg.append(refresh);

    // The idle window: the current one as a band to the session's end if unused; the earlier ones
    // as thin ghosts below it, so each refresh visibly moves the window forward.
    const idle = el('g', { class: 'tl-idle' });
    this.windows
      .slice(0, -1)
      .slice(-3)
      .forEach((w, i, ghosts) => {
        const y = LANES.idle + 13 + (ghosts.length - 1 - i) * 4;
        idle.append(
          el('line', { x1: clip(w.at), x2: clip(w.endsAt), y1: y, y2: y, class: 'tl-ghost' }),
        );
      });
    const windowEnd = this.endedAt ? at : window.endsAt;
    idle.append(
      el('rect', {
        x: clip(window.at),
        y: LANES.idle - 9,
        width: Math.max(2, clip(windowEnd) - clip(window.at)),
        height: 18,
        rx: 9,
        class: `tl-window${this.endedAt ? ' ended' : ''}`,
        'data-ends-at': window.endsAt,
      }),
    );
    const left = duration(window.endsAt - at);
    const endLabel = this.endedAt
      ? 'session ended'
      : `ends in ${left}${window.endsAt > end ? ' →' : ''}`;
    // Inside the band's end when it fits; else beside the band, where there is room.
    const labelWidth = textWidth(endLabel);
    const bandStart = clip(window.at);
    const bandEnd = Math.max(bandStart + 2, clip(windowEnd));
    // Once the session ended the band fades: the label turns dark to stay readable on it.
    let place = {
      x: bandEnd - 8,
      'text-anchor': 'end',
      class: `tl-window-text${this.endedAt ? ' dark' : ''}`,
    };
    if (bandEnd - bandStart < labelWidth + 16) {
      place =
        bandEnd + 6 + labelWidth <= WIDTH - 2
          ? { x: bandEnd + 6, 'text-anchor': 'start', class: 'tl-window-text dark' }
          : { x: bandStart - 6, 'text-anchor': 'end', class: 'tl-window-text dark' };
    }
    idle.append(el('text', { ...place, y: LANES.idle + 4 }, endLabel));
    svg.append(idle);

    // Sign-in, refreshes (a tick across the lanes, ↻ on the refresh token's lane), refusals, the end.
    // The sign-in dot and the ↻ of a refresh right after it (another tab restoring, say) would be
    // drawn on top of each other: each symbol on the refresh token's lane keeps clear of the one
    // before it, joined to its true time by a short stem.
    const marks = el('g', { class: 'tl-marks' });
    let laneFree = -Infinity;
    const onLane = (mx, radius) => {
      const cx = Math.min(WIDTH - RIGHT, Math.max(mx, laneFree + radius));
      laneFree = cx + radius + 2;
      return cx;
    };
    for (const mark of this.marks) {
      const mx = x(mark.at);
      if (mark.kind === 'refresh') {
        const cx = onLane(mx, 6.5);
        const tick = el('g', { class: 'refresh-tick', 'data-trigger': mark.trigger });
        tick.append(el('line', { x1: mx, x2: mx, y1: top, y2: LANES.idle + 10, class: 'tl-tick' }));
        if (cx - mx > 0.5) {
          tick.append(
            el('line', {
              x1: mx,
              x2: cx,
              y1: LANES.refresh,
              y2: LANES.refresh,
              class: 'tl-stem',
            }),
          );
        }
        tick.append(
          el('circle', { cx, cy: LANES.refresh, r: 6.5, class: 'tl-rotate' }),
          el(
            'text',
            { x: cx, y: LANES.refresh + 3.5, 'text-anchor': 'middle', class: 'tl-rotate-text' },
            '↻',
          ),
          el(
            'title',
            {},
            `Refreshed ${TRIGGERS[mark.trigger] ?? mark.trigger}: new access token, refresh token rotated`,
          ),
        );
        marks.append(tick);
      }
      if (mark.kind === 'signed-in') {
        const start = el('circle', {
          cx: onLane(mx, 4.5),
          cy: LANES.refresh,
          r: 4.5,
          class: 'tl-start',
        });
        start.append(el('title', {}, 'Signed in: first access token, first refresh token'));
        marks.append(start);
      }
      if (mark.kind === 'refused') {
        // To the right of its dot, or to the left near the picture's right edge: never cut off.
        const label = `401 ${mark.code}`;
        const right = mx + 6 + textWidth(label) <= WIDTH - 2;
        const refused = el('g', { class: 'refused-mark' });
        refused.append(
          el('circle', { cx: mx, cy: top - 5, r: 3.5, class: 'tl-refused' }),
          el(
            'text',
            {
              x: right ? mx + 6 : mx - 6,
              y: top - 1.5,
              'text-anchor': right ? 'start' : 'end',
              class: 'tl-refused-text',
            },
            label,
          ),
        );
        marks.append(refused);
      }
      if (mark.kind === 'signed-out') {
        marks.append(el('line', { x1: mx, x2: mx, y1: top, y2: bottom, class: 'tl-end' }));
      }
    }
    svg.append(marks);

    if (!this.endedAt) {
      const nowLine = el('g', { class: 'tl-now' });
      nowLine.append(el('line', { x1: x(at), x2: x(at), y1: top - 2, y2: bottom }));
      svg.append(nowLine);
    }
  }
}

/** How the log and the picture name what started a refresh (the SDK's `trigger`). */
export const TRIGGERS = {
  token_expired: 'after 401 token_expired',
  invalid_token: 'after 401 invalid_token: the signing key was retired',
  scheduled: 'automatically, shortly before expiry',
  due: 'the access token was about to expire',
  manual: 'on request',
  'other-tab': 'by another tab',
};
