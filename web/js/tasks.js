// @ts-check
// Claude Code task lists, live from the /tasks stream: an overview on connect, then changes.
// Lists are grouped under their slot when a supervised slot owns the session.

import { h } from './dom.js';
import { TaskMsg, TaskStatus } from './protocol.js';

const STATUS = {
  pending: { icon: '○', label: 'pending' },
  in_progress: { icon: '◐', label: 'in progress' },
  completed: { icon: '●', label: 'done' },
};

/** A list's key: one session can have a task list and legacy per-agent todo lists. */
function listKey(p) {
  return `${p.sessionId}\u0000${p.source || 'tasks'}\u0000${p.agentId || ''}`;
}

export class TaskStore extends EventTarget {
  constructor() {
    super();
    /** @type {Map<string, object>} SessionTasks by listKey */
    this.lists = new Map();
  }

  apply(msg) {
    const p = msg.payload || {};
    switch (msg.type) {
      case TaskMsg.OVERVIEW:
        this.lists = new Map((p.sessions || []).map((s) => [listKey(s), { ...s, tasks: s.tasks || [] }]));
        break;
      case TaskMsg.CHANGED: {
        const key = listKey(p);
        const prev = this.lists.get(key);
        if (!p.tasks || p.tasks.length === 0) {
          this.lists.delete(key);
        } else {
          this.lists.set(key, {
            ...(prev || { active: true, cwd: null }),
            sessionId: p.sessionId,
            slotId: p.slotId ?? prev?.slotId,
            projectName: p.projectName,
            source: p.source,
            agentId: p.agentId,
            tasks: p.tasks,
          });
        }
        break;
      }
      case TaskMsg.TASK_STARTED:
      case TaskMsg.TASK_COMPLETED:
        // The matching cc_tasks_changed carries the whole list; this keeps a lone event right too.
        for (const list of this.lists.values()) {
          if (list.sessionId !== p.sessionId || !p.task) continue;
          const i = list.tasks.findIndex((t) => t.id === p.task.id);
          if (i >= 0) list.tasks[i] = p.task;
        }
        break;
      case TaskMsg.SESSION_ACTIVE:
      case TaskMsg.SESSION_INACTIVE:
        for (const list of this.lists.values()) {
          if (list.sessionId === p.sessionId) {
            list.active = msg.type === TaskMsg.SESSION_ACTIVE;
            if (p.slotId) list.slotId = p.slotId;
          }
        }
        break;
      default:
        return;
    }
    this.dispatchEvent(new Event('change'));
  }

  counts() {
    const c = { pending: 0, in_progress: 0, completed: 0 };
    for (const list of this.lists.values()) for (const t of list.tasks) c[t.status] = (c[t.status] || 0) + 1;
    return c;
  }

  /** [{title, slotId, lists}] with slot groups first, then sessions by project. */
  groups() {
    const bySlot = new Map();
    const other = [];
    for (const list of this.lists.values()) {
      if (list.tasks.length === 0) continue;
      if (list.slotId) {
        if (!bySlot.has(list.slotId)) bySlot.set(list.slotId, []);
        bySlot.get(list.slotId).push(list);
      } else {
        other.push(list);
      }
    }
    const groups = [...bySlot.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([slotId, lists]) => ({ title: slotId, slotId, lists }));
    other.sort((a, b) => Number(b.active) - Number(a.active) || String(a.projectName).localeCompare(String(b.projectName)));
    for (const list of other) groups.push({ title: known(list.projectName) || `list ${shortId(list.sessionId)}`, slotId: null, lists: [list] });
    return groups;
  }
}

/** Renders the tasks panel (a full redraw: lists are small and change a few times a minute). */
export function renderTasks(store, { groupsEl, emptyEl, summaryEl }) {
  const groups = store.groups();
  const c = store.counts();
  summaryEl.textContent = groups.length ? `${c.in_progress} active · ${c.pending} pending · ${c.completed} done` : '';
  emptyEl.hidden = groups.length > 0;
  groupsEl.replaceChildren(...groups.map(renderGroup));
}

function renderGroup(group) {
  return h('section', { class: 'task-group', dataset: { slotId: group.slotId || '' } },
    h('h3', { class: 'task-group-title' },
      group.slotId ? h('span', { class: 'tag', text: 'slot' }) : null,
      h('span', { text: group.title })),
    group.lists.map(renderList));
}

function renderList(list) {
  const label = [known(list.projectName), shortId(list.sessionId), list.agentId ? `agent ${shortId(list.agentId)}` : null]
    .filter(Boolean).join(' · ');
  return h('div', { class: `task-list${list.active ? ' active' : ''}`, dataset: { sessionId: list.sessionId } },
    h('p', { class: 'task-list-meta', title: list.cwd || list.sessionId },
      h('span', { class: `dot ${list.active ? 'on' : 'off'}`, title: list.active ? 'session active' : 'session inactive' }),
      label),
    h('ol', { class: 'task-items' }, list.tasks.map((t) => renderTask(t, list.tasks))));
}

function renderTask(task, all) {
  const st = STATUS[task.status] || { icon: '?', label: task.status };
  const open = new Set(all.filter((t) => t.status !== TaskStatus.COMPLETED).map((t) => t.id));
  const blockers = (task.blockedBy || []).filter((id) => open.has(id));
  return h('li', {
    class: `task ${task.status}`,
    dataset: { taskId: task.id },
    title: task.description || '',
  },
  h('span', { class: 'task-status', title: st.label, 'aria-label': st.label, text: st.icon }),
  h('span', { class: 'task-id', text: `#${task.id}` }),
  h('span', { class: 'task-subject', text: task.subject }),
  task.status === TaskStatus.IN_PROGRESS && task.activeForm ? h('span', { class: 'task-active', text: task.activeForm }) : null,
  blockers.length && task.status !== TaskStatus.COMPLETED
    ? h('span', { class: 'task-blocked', text: `blocked by ${blockers.map((b) => `#${b}`).join(', ')}` })
    : null,
  task.owner ? h('span', { class: 'task-owner', text: task.owner }) : null);
}

/** The daemon says `unknown` when no session file names the project. */
function known(projectName) {
  return projectName && projectName !== 'unknown' ? projectName : null;
}

function shortId(id) {
  return id && id.length > 12 ? id.slice(0, 8) : id;
}
