/**
 * TypeBox schemas of the admin and portal API. They give Fastify its validation and the
 * serializer its whitelist (a record field not listed here never leaves the server), and each is
 * checked against the shape in server/protocol/api.ts, so the pages and the server cannot drift.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type {
  AdminAccount,
  AdminAssignment,
  AdminGroup,
  AdminPermissionSet,
  AdminUser,
  AuditResponse,
  CreateAssignmentRequest,
  CreateGroupRequest,
  CreateUserRequest,
  CreateUserResponse,
  InviteResponse,
  PortalResponse,
  SetGroupMembersRequest,
  UpdateUserRequest,
} from '../protocol/api.js';
import { maxHomeSizeBytes, maxWeeklyUsageLimitS, minHomeSizeBytes } from '../protocol/api.js';
import { type Fits } from '../route-schemas.js';

const Id = Type.String({ minLength: 1, maxLength: 100 });
/** Loose here; the service checks the 12 digits and says so in words. */
const AccountIdText = Type.String({ maxLength: 100 });
const Name = Type.String({ maxLength: 512 });
const Description = Type.String({ maxLength: 4096 });
const Time = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const IdParams = Type.Object({ id: Id });
export const AccountIdParams = Type.Object({ accountId: AccountIdText });
export const Empty = Type.Object({}, { additionalProperties: false });
export const Ok = Type.Object({ ok: Type.Literal(true) });

export const AdminUserSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  email: Nullable(Type.String()),
  disabled: Type.Boolean(),
  mfaEnrolled: Type.Boolean(),
  mfaRequired: Type.Boolean(),
  groups: Type.Array(Type.String()),
  createdAt: Time,
  lastLoginAt: Nullable(Time),
  invite: Nullable(Type.Object({ expiresAt: Time })),
  source: Type.String({ description: '`local`, or `oidc:<provider id>`' }),
  provisionedBy: Nullable(
    Type.String({ description: 'Name of the SCIM token that provisioned the user; null when none did.' }),
  ),
});

export const CreateUserBody = Type.Object(
  {
    username: Name,
    password: Type.Optional(Type.String({ maxLength: 4096 })),
    email: Type.Optional(Type.String({ maxLength: 1024 })),
    groups: Type.Optional(Type.Array(Name, { maxItems: 100 })),
    mfaRequired: Type.Optional(Type.Boolean()),
    identityProvider: Type.Optional(
      Type.String({
        maxLength: 64,
        description: 'A configured identity provider: the user signs in there only, no password or invite',
      }),
    ),
  },
  { additionalProperties: false },
);

export const CreateUserReply = Type.Object({
  id: Type.String(),
  username: Type.String(),
  inviteUrl: Type.Optional(Type.String()),
});

export const UpdateUserBody = Type.Object(
  {
    disabled: Type.Optional(Type.Boolean()),
    email: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
    mfaRequired: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const InviteReply = Type.Object({ inviteUrl: Type.String() });

export const CsvText = Type.String({ description: 'CSV text (text/csv)' });

const HomeSize = Type.Integer({ minimum: minHomeSizeBytes, maximum: maxHomeSizeBytes });
/**
 * One schema with a type list, not a union: with Fastify's type coercion a union would turn null
 * into 0 (the integer branch) or 0 into null (the null branch), and 0 is a real limit (no shell
 * time) while null is unlimited.
 */
const WeeklyUsageLimit = Type.Unsafe<number | null>({
  type: ['integer', 'null'],
  minimum: 0,
  maximum: maxWeeklyUsageLimitS,
});

/** Session recording: off, the terminal's output, or its output and what was typed. */
export const RecordModeSchema = Type.Union(
  [Type.Literal('off'), Type.Literal('output'), Type.Literal('output+input')],
  { description: "Record members' terminals (asciicast): off, output, or output+input" },
);

export const AdminGroupSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  homeSizeBytes: Nullable(Type.Integer()),
  weeklyUsageLimitS: Nullable(Type.Integer()),
  record: RecordModeSchema,
  members: Type.Array(Type.Object({ id: Type.String(), username: Type.String() })),
  createdAt: Time,
});

export const CreateGroupBody = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    homeSizeBytes: Type.Optional(Nullable(HomeSize)),
    weeklyUsageLimitS: Type.Optional(WeeklyUsageLimit),
    record: Type.Optional(RecordModeSchema),
  },
  { additionalProperties: false },
);

export const UpdateGroupBody = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    homeSizeBytes: Type.Optional(Nullable(HomeSize)),
    weeklyUsageLimitS: Type.Optional(WeeklyUsageLimit),
    record: Type.Optional(RecordModeSchema),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const SetMembersBody = Type.Object(
  { userIds: Type.Array(Id, { maxItems: 10_000 }) },
  { additionalProperties: false },
);

export const AdminAccountSchema = Type.Object({
  accountId: Type.String(),
  name: Type.String(),
  createdAt: Time,
});

export const CreateAccountBody = Type.Object(
  { accountId: AccountIdText, name: Name },
  { additionalProperties: false },
);

export const UpdateAccountBody = Type.Object({ name: Name }, { additionalProperties: false });

export const AdminPermissionSetSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  sessionDurationS: Type.Integer(),
  roleArnTemplate: Type.String(),
  sessionPolicy: Nullable(Type.String()),
  roleOverrides: Type.Record(Type.String(), Type.String()),
  record: RecordModeSchema,
  createdAt: Time,
});

/** A policy document as an object, or the same as JSON text. */
const SessionPolicy = Nullable(
  Type.Union([Type.String({ maxLength: 65_536 }), Type.Record(Type.String(), Type.Unknown())]),
);
const RoleOverrides = Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 4096 }), {
  maxProperties: 1000,
});

export const CreatePermissionSetBody = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    sessionDurationS: Type.Optional(Type.Integer()),
    roleArnTemplate: Type.Optional(Type.String({ maxLength: 4096 })),
    sessionPolicy: Type.Optional(SessionPolicy),
    roleOverrides: Type.Optional(RoleOverrides),
    record: Type.Optional(RecordModeSchema),
  },
  { additionalProperties: false },
);

export const UpdatePermissionSetBody = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    sessionDurationS: Type.Optional(Type.Integer()),
    roleArnTemplate: Type.Optional(Type.String({ maxLength: 4096 })),
    sessionPolicy: Type.Optional(SessionPolicy),
    roleOverrides: Type.Optional(RoleOverrides),
    record: Type.Optional(RecordModeSchema),
  },
  { additionalProperties: false, minProperties: 1 },
);

const PrincipalKind = Type.Union([Type.Literal('user'), Type.Literal('group')]);

export const CreateAssignmentBody = Type.Object(
  { principalType: PrincipalKind, principalId: Id, accountId: AccountIdText, permissionSet: Name },
  { additionalProperties: false },
);

export const AdminAssignmentSchema = Type.Object({
  id: Type.String(),
  principalType: PrincipalKind,
  principalId: Type.String(),
  principalName: Type.String(),
  accountId: Type.String(),
  accountName: Type.String(),
  permissionSetId: Type.String(),
  permissionSet: Type.String(),
  createdAt: Time,
});

export const AuditQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    beforeId: Type.Optional(Type.Integer({ minimum: 1 })),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);

export const AuditReply = Type.Object({
  entries: Type.Array(
    Type.Object({
      id: Type.Integer(),
      at: Time,
      actor: Nullable(Type.String()),
      action: Type.String(),
      target: Nullable(Type.String()),
      details: Type.Record(Type.String(), Type.Unknown()),
      ip: Nullable(Type.String()),
    }),
  ),
});

export const PortalReply = Type.Object({
  regions: Type.Array(Type.Object({ id: Type.String(), name: Type.String() })),
  defaultRegion: Type.Optional(Type.String()),
  assignments: Type.Array(
    Type.Object({
      accountId: Type.String(),
      accountName: Type.String(),
      permissionSet: Type.String(),
      permissionSetDescription: Type.Optional(Type.String()),
      sessionDurationS: Type.Integer(),
    }),
  ),
  usage: Type.Object({
    usedS: Type.Integer({ minimum: 0 }),
    limitS: Nullable(Type.Integer({ minimum: 0 })),
    resetsAt: Time,
  }),
});

export const ErrorReply = Type.Object(
  { code: Type.String(), message: Type.String() },
  { additionalProperties: true },
);

/** What the server sends or accepts is a valid protocol value: a mismatch fails the build here. */
export const protocolProofs = [
  true satisfies Fits<typeof AdminUserSchema, AdminUser>,
  true satisfies Fits<typeof CreateUserReply, CreateUserResponse>,
  true satisfies Fits<typeof InviteReply, InviteResponse>,
  true satisfies Fits<typeof AdminGroupSchema, AdminGroup>,
  true satisfies Fits<typeof AdminAccountSchema, AdminAccount>,
  true satisfies Fits<typeof AdminPermissionSetSchema, AdminPermissionSet>,
  true satisfies Fits<typeof AdminAssignmentSchema, AdminAssignment>,
  true satisfies Fits<typeof AuditReply, AuditResponse>,
  true satisfies Fits<typeof PortalReply, PortalResponse>,
  true satisfies Fits<typeof CreateUserBody, CreateUserRequest>,
  true satisfies Fits<typeof UpdateUserBody, UpdateUserRequest>,
  true satisfies Fits<typeof CreateGroupBody, CreateGroupRequest>,
  true satisfies Fits<typeof SetMembersBody, SetGroupMembersRequest>,
  true satisfies Fits<typeof CreateAssignmentBody, CreateAssignmentRequest>,
] as const;

export type AdminUserView = Static<typeof AdminUserSchema>;
export type AdminGroupView = Static<typeof AdminGroupSchema>;
export type AdminAssignmentView = Static<typeof AdminAssignmentSchema>;
