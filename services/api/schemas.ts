import { Type, type Static } from '@sinclair/typebox';

const open = { additionalProperties: true } as const;
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const ErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({
    path: Type.String(),
    line: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    message: Type.String(),
  }, open))),
}, { ...open, $id: 'Error' });

export const Phase = Type.Object({
  name: Type.String(), startedAt: Type.String(), durationMs: Type.Number(), status: Type.String(),
}, open);

export const Check = Type.Object({
  name: Type.String(), kind: Type.String(), status: Type.String(),
  expected: Type.String(), actual: Type.Union([Type.String(), Type.Null()]), message: Type.String(),
  actualTruncated: Type.Optional(Type.Boolean({ description: 'actual was cut to 200 characters: evidence keeps what a check compares, not row data' })),
}, open);

export const FindingSchema = Type.Object({ code: Type.String(), severity: Type.String(), message: Type.String() }, open);

export const Run = Type.Object({
  id: Type.String({ format: 'uuid' }),
  planId: Type.String(),
  planVersion: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('finished')]),
  verdict: Type.Union([Type.Literal('passed'), Type.Literal('failed'), Type.Literal('error'), Type.Literal('cancelled'), Type.Null()]),
  trigger: Type.String(),
  triggeredBy: Type.String(),
  queuedAt: Type.String({ format: 'date-time' }),
  startedAt: Nullable(Type.String()),
  finishedAt: Nullable(Type.String()),
  cancelRequestedAt: Nullable(Type.String()),
  phases: Type.Array(Phase),
  rto: Type.Union([Type.Object({
    targetSeconds: Type.Number(), measuredSeconds: Type.Union([Type.Number(), Type.Null()]), met: Type.Union([Type.Boolean(), Type.Null()]),
  }, open), Type.Null()]),
  rpo: Type.Union([Type.Object({
    targetSeconds: Type.Number(), backupAgeSeconds: Type.Union([Type.Number(), Type.Null()]), met: Type.Union([Type.Boolean(), Type.Null()]),
  }, open), Type.Null()]),
  checks: Type.Array(Check),
  backup: Type.Union([Type.Object({
    path: Type.String(), createdAt: Type.String(),
    sizeBytes: Type.Optional(Type.Number({ description: 'absent when the run ended before the backup was read whole' })),
    sha256: Type.Optional(Type.String({ description: 'of the file, or of a folder\'s sorted `sha256  ./path` lines; absent when the run ended before the backup was read whole' })),
  }, open), Type.Null()]),
  findings: Type.Array(FindingSchema),
  sandbox: Type.Union([Type.Object({}, open), Type.Null()]),
  restore: Type.Union([Type.Object({}, open), Type.Null()]),
  origin: Type.Union([Type.Literal('ernstfall'), Type.Literal('external'), Type.Literal('manual'), Type.Literal('exercise')], { description: 'ernstfall: restored in a sandbox; external: another tool tested and reported it (POST /plans/{id}/results); manual: people restored it step by step; exercise: people rehearsed a scenario (POST /plans/{id}/exercises)' }),
  externalId: Type.Optional(Type.String({ description: 'the reporting tool\'s id of the result (a second report with it is the same run)' })),
  pool: Type.Optional(Type.String({ description: 'the worker pool whose queue it waits or ran in (the plan\'s sandbox.pool); absent for the default pool' })),
}, { $id: 'Run' });

export const RunList = Type.Object({ items: Type.Array(Type.Ref(Run)), nextCursor: Type.Union([Type.String(), Type.Null()]) });

export const Plan = Type.Object({
  id: Type.String(),
  title: Type.String(),
  origin: Type.Union([Type.Literal('file'), Type.Literal('api')]),
  sourceFile: Type.Union([Type.String(), Type.Null()]),
  version: Type.String({ description: 'SHA-256 of the canonical plan; every change is a new version' }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  status: Type.String({ description: 'failing | overdue | never-tested | due-soon | ok' }),
  nextDueAt: Type.Union([Type.String(), Type.Null()]),
  nextScheduledAt: Type.Union([Type.String(), Type.Null()], { description: 'next cron slot (null without schedule or while paused)' }),
  paused: Type.Union([Type.Object({ at: Type.String(), reason: Type.String(), by: Type.String() }, open), Type.Null()]),
  scheduler: Type.Union([Type.Object({ lastTickAt: Type.Union([Type.String(), Type.Null()]), healthy: Type.Boolean() }, { ...open, description: 'for scheduled plans: whether a scheduler is ticking (last leader tick under 3 minutes ago)' }), Type.Null()]),
  lastRun: Type.Union([Type.Object({ id: Type.String(), verdict: Type.Union([Type.String(), Type.Null()]), finishedAt: Type.Union([Type.String(), Type.Null()]) }, open), Type.Null()]),
  alert: Type.Union([Type.Object({
    id: Type.String(), kind: Type.String(), since: Type.String(), escalationLevel: Type.Integer(), acknowledged: Type.Boolean(),
    snoozedUntil: Type.Union([Type.String(), Type.Null()]),
  }, { ...open, description: 'the open alert (overdue or failing episode), see /alerts' }), Type.Null()]),
  definition: Type.Object({}, { ...open, description: 'the validated plan; canary values are redacted' }),
}, { $id: 'Plan' });

export const PlanList = Type.Object({ items: Type.Array(Type.Ref(Plan)) });

export const PlanIdParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' }) });
export const RunIdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const ListRunsQuery = Type.Object({
  planId: Type.Optional(Type.String()),
  verdict: Type.Optional(Type.Union([Type.Literal('passed'), Type.Literal('failed'), Type.Literal('error'), Type.Literal('cancelled')])),
  status: Type.Optional(Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('finished')])),
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
}, { additionalProperties: false });

export type ListRunsQueryT = Static<typeof ListRunsQuery>;
