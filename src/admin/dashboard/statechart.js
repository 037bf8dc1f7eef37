// @ts-check
// A saga's compiled statechart as nested boxes (compound states hold their children).

import { badge, h } from './dom.js';

/** @typedef {import('./types.js').ChartNode} ChartNode */
/** @typedef {import('./types.js').Step} Step */

/**
 * A state and its children as nested boxes: active states lit, each step's status on its state,
 * and in a step that is not active, the sub-state it ended in marked.
 * @returns {HTMLElement}
 */
export function chartNode(/** @type {ChartNode} */ node, /** @type {Set<string>} */ active, /** @type {Step[]} */ steps) {
  const step = steps.find((s) => s.path === node.id);
  const ran = step && (step.startedAt !== null || step.status !== 'created');
  const ended = ran && !active.has(node.id) ? (step.compensated ? 'compensated' : step.status) : null;
  /** @param {ChartNode} n */
  const classes = (n) => ['state', n.type, active.has(n.id) && 'active', ...n.tags.map((t) => `tag-${t}`)].filter(Boolean).join(' ');
  if (!node.children.length) return h('div', { class: classes(node), 'data-id': node.id, title: [node.id, ...node.tags].join(' · ') }, node.key);
  // A box holding boxes side by side (a conditional step's branches) starts as wide as they are.
  return h('div', { class: classes(node), 'data-id': node.id, style: `flex-basis:${BOX_PX * breadth(node)}px` },
    h('div', { class: 'state-label', title: node.id }, node.key, step ? badge(step.status) : null, step?.compensated ? badge('compensated') : null),
    h('div', { class: 'state-children' }, node.children.map((c) => {
      const el = chartNode(c, active, steps);
      if (ended && c.key === ended) el.classList.add('ended');
      return el;
    })),
  );
}

const BOX_PX = 230;

/** How many boxes of compound states lie side by side in this one, at most. @param {ChartNode} node @returns {number} */
function breadth(node) {
  const boxes = node.children.filter((c) => c.children.length);
  return boxes.length ? boxes.reduce((n, c) => n + breadth(c), 0) : 1;
}

/** What the marks on the chart mean. */
export const legend = () =>
  h('p', { class: 'legend' },
    h('span', { class: 'state atomic active' }, 'lit'), ' where the execution is  ',
    h('span', { class: 'state atomic ended' }, 'marked'), ' where a step ended  ',
    h('span', { class: 'state atomic tag-paused' }, 'dashed'), ' waits on a participant  ',
    h('span', { class: 'state final' }, 'double'), ' final');
