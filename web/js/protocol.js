// @ts-check
// The daemon's wire vocabulary as the viewer uses it (docs/API.md): message types of the
// /pty, /events and /tasks WebSockets, semantic states, the busy family, process statuses,
// WebSocket close codes and the meanings of a dialog's options. Every other module imports
// these names instead of retyping strings and numbers.

/** Messages on `/pty/<slot>`, both ways. */
export const PtyMsg = Object.freeze({
  SCREEN: 'screen',
  DATA: 'data',
  RESIZE: 'resize',
  STATE: 'state',
  EXIT: 'exit',
  ERROR: 'error',
  INPUT: 'input',
  /** Viewer to daemon: `{hidden}`, whether anyone looks at this viewer (a background tab). */
  VISIBILITY: 'visibility',
});

/** Messages on `/events`. */
export const EventMsg = Object.freeze({
  SLOTS: 'slots',
  SLOT_CREATED: 'slot_created',
  SLOT_STARTED: 'slot_started',
  SLOT_STATE: 'slot_state',
  SLOT_EXITED: 'slot_exited',
  SLOT_UPDATED: 'slot_updated',
  SLOT_REMOVED: 'slot_removed',
  USAGE: 'usage',
});

/** Messages on `/tasks` (docs/TASKS.md). */
export const TaskMsg = Object.freeze({
  OVERVIEW: 'cc_tasks_overview',
  CHANGED: 'cc_tasks_changed',
  TASK_STARTED: 'cc_task_started',
  TASK_COMPLETED: 'cc_task_completed',
  SESSION_ACTIVE: 'cc_session_active',
  SESSION_INACTIVE: 'cc_session_inactive',
});

/**
 * A slot's semantic state (`state` in SlotInfo, `slot_state` and `/pty` `state` messages).
 * @typedef {'starting'|'idle'|'thinking'|'tool_running'|'responding'|'confirming'|'error'|'exited'} SemanticState
 */
export const State = Object.freeze({
  STARTING: 'starting',
  IDLE: 'idle',
  THINKING: 'thinking',
  TOOL_RUNNING: 'tool_running',
  RESPONDING: 'responding',
  CONFIRMING: 'confirming',
  ERROR: 'error',
  EXITED: 'exited',
});

/** The busy family: the program is working on a turn. */
export const BUSY_STATES = Object.freeze([State.THINKING, State.TOOL_RUNNING, State.RESPONDING]);

/** @param {string | null | undefined} state */
export function isBusy(state) {
  return /** @type {readonly (string | null | undefined)[]} */ (BUSY_STATES).includes(state);
}

/** A slot's process status (`status` in SlotInfo). */
export const Status = Object.freeze({
  STARTING: 'starting',
  RUNNING: 'running',
  EXITED: 'exited',
});

/** WebSocket close codes the daemon sends. */
export const Close = Object.freeze({
  /** The viewer took nothing for `[server] stuck_viewer_secs`. */
  STUCK_VIEWER: 1008,
  /** A message over 1 MiB. */
  TOO_BIG: 1009,
  /** The daemon is upgrading (`missiond upgrade`): connect again, the slot runs on. */
  SERVICE_RESTART: 1012,
  /** Invalid URL (`/pty/`, `/pty/a/b`, a bad id). */
  INVALID: 4000,
  /** Slot not found or not running. */
  NOT_FOUND: 4001,
  /** Cannot attach (viewer cap reached). */
  CANNOT_ATTACH: 4002,
  /** The slot exited. */
  EXITED: 4003,
});

/** Close codes after which reconnecting to `/pty/<slot>` is pointless until the slot runs again. */
/** @type {readonly number[]} */
export const FINAL_PTY_CLOSES = Object.freeze([Close.INVALID, Close.NOT_FOUND, Close.EXITED]);

/**
 * What a dialog option means (`meaning` in a dialog's options, `answer` of `confirm`).
 * @typedef {'yes'|'always'|'no'} Meaning
 */
export const Meaning = Object.freeze({
  YES: /** @type {Meaning} */ ('yes'),
  ALWAYS: /** @type {Meaning} */ ('always'),
  NO: /** @type {Meaning} */ ('no'),
});

/** A Claude Code task's status (docs/TASKS.md). */
export const TaskStatus = Object.freeze({
  PENDING: 'pending',
  IN_PROGRESS: 'in_progress',
  COMPLETED: 'completed',
});

/** The profile of a slot that runs Claude Code (`profile` in SlotInfo). */
export const PROFILE_CLAUDE_CODE = 'claude-code';

/** Error codes of `{"error": {"code", "message"}}` that the viewer acts on (docs/API.md). */
export const ErrorCode = Object.freeze({
  /** `DELETE /api/slots/{id}` refused: the slot's worktree holds work that exists nowhere else. */
  WORKTREE_UNSAVED: 'worktree_unsaved',
});

/**
 * What `DELETE /api/slots/{id}?worktree=` does with a worktree holding unsaved work.
 * @typedef {'keep'|'discard'} WorktreeRemoval
 */
export const WorktreeRemoval = Object.freeze({
  /** Remove the slot, keep the worktree and its branch on disk. */
  KEEP: /** @type {WorktreeRemoval} */ ('keep'),
  /** Remove the slot, delete the worktree and its branch. */
  DISCARD: /** @type {WorktreeRemoval} */ ('discard'),
});

/** The audit action of an answered dialog (`action` of an AuditEntry). */
export const AUDIT_CONFIRM = 'confirm';

/**
 * One option of a dialog (`stateDetail.dialog.options`).
 * @typedef {{ n: number, label: string, selected?: boolean, meaning: Meaning | null }} DialogOption
 */

/**
 * The dialog of a confirming slot (`stateDetail.dialog`).
 * @typedef {{ kind: string, title?: string, body?: string, question?: string,
 *   options: DialogOption[], cancellable?: boolean }} Dialog
 */

/**
 * A slot as `/api/slots` and `/events` describe it (docs/API.md, `SlotInfo`); the fields the
 * viewer reads.
 * @typedef {{
 *   id: string, command: string, args?: string[], cwd?: string, cols?: number, rows?: number,
 *   profile?: string, pid: number | null, status: string, state: SemanticState,
 *   stateDetail?: { dialog?: Dialog, error?: object, reason?: string, tool?: object, drift?: object } | null,
 *   stateSince?: number, startedAt?: number | null, exitCode?: number | null,
 *   exitSignal?: string | null, restarts?: number, viewers?: number,
 *   claudeVersion?: string | null, worktree?: object | null, sessionId?: string | null,
 *   usage?: { costUsd?: number | null, contextUsedPercent?: number | null, model?: string | null } | null,
 * }} SlotInfo
 */

/** A recorded run (`/api/slots/{id}/runs/{n}.cast`, asciicast v2): the marker event code and
 * the prefixes of its marker labels (`state:idle`, `dialog:…`, `answer:…`). */
export const Cast = Object.freeze({
  MARKER: 'm',
  STATE_PREFIX: 'state:',
  DIALOG_PREFIX: 'dialog:',
  ANSWER_PREFIX: 'answer:',
});
