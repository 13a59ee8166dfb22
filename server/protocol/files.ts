/**
 * File transfer API (issue 6) shared by the server and the shell page. Pure types and constants:
 * no node:*, no DOM. The bytes never pass through Cove: the page PUTs to / GETs from presigned S3
 * URLs, and the server moves them between S3 and the container through a helper running as the user.
 *
 * Routes (all need a full session; POST/DELETE need the Cove Origin and a JSON body):
 * - `POST /api/environments/:region/uploads` {@link UploadRequest} → {@link UploadResponse}
 * - `POST /api/environments/:region/uploads/:id/parts/:partNumber` {@link PartStoredRequest} → 204 (optional, multipart only)
 * - `POST /api/environments/:region/uploads/:id/complete` {@link CompleteUploadRequest} → {@link CompleteUploadResponse}
 * - `DELETE /api/environments/:region/uploads/:id` → 204 (cancel: aborts the multipart upload, deletes staging)
 * - `POST /api/environments/:region/downloads` {@link DownloadRequest} → {@link DownloadResponse}
 * - `GET /api/environments/:region/downloads/progress/:progressId` → {@link DownloadProgressResponse} (404 when none runs)
 * - `GET /api/environments/:region/files?dir=~` → {@link FileListing}
 */

/** Longest file name in bytes (UTF-8), as on ext4. */
export const maxFileNameBytes = 255;

export interface UploadFileRequest {
  /** A plain file name: no `/`, NUL, control characters, not `.` or `..`, at most 255 UTF-8 bytes. */
  readonly name: string;
  /** Exact size in bytes; S3 and the helper refuse any other number of bytes. */
  readonly size: number;
}

/** What to do when the target already holds a file of that name. */
export type UploadConflict = 'keep-both' | 'replace';

export interface UploadRequest {
  /** Target folder: `~`, `~/sub/dir`, a path relative to `~`, or an absolute path inside `$HOME`. */
  readonly dir: string;
  readonly files: readonly UploadFileRequest[];
  /** Default `keep-both`: an existing file stays and the new one is saved as `name (1)`. */
  readonly onConflict?: UploadConflict;
}

/** A file below the multipart threshold: one presigned PUT with exactly `size` bytes. */
export interface SingleUpload {
  readonly id: string;
  readonly name: string;
  readonly url: string;
}

export interface UploadPartUrl {
  /** 1-based. */
  readonly partNumber: number;
  readonly url: string;
}

/**
 * A file above the threshold: PUT bytes `[(partNumber-1)*partSize, min(partNumber*partSize, size))`
 * to each part's URL (in parallel, retried per part), keep each response's `ETag` header, report
 * each stored part (`parts/:partNumber`, lets the server start early), and send them all to `complete`.
 */
export interface MultipartUpload {
  readonly id: string;
  readonly name: string;
  readonly partSize: number;
  readonly parts: readonly UploadPartUrl[];
}

export type UploadTicket = SingleUpload | MultipartUpload;

export function isMultipartUpload(ticket: UploadTicket): ticket is MultipartUpload {
  return 'parts' in ticket;
}

export interface UploadResponse {
  /** One ticket per requested file, in the same order. */
  readonly uploads: readonly UploadTicket[];
  /** When the presigned URLs stop working (ISO 8601). */
  readonly expiresAt: string;
}

export interface CompletedPart {
  readonly partNumber: number;
  /** The `ETag` response header of that part's PUT, quotes included or not. */
  readonly etag: string;
}

/**
 * Sent after each part's PUT succeeded (optional): the server starts writing the file into the home
 * while later parts are still on their way, so `complete` only has to wait for the last part. The
 * file still appears only after `complete`.
 */
export interface PartStoredRequest {
  /** The `ETag` response header of that part's PUT. */
  readonly etag: string;
}

export interface CompleteUploadRequest {
  /** Required for multipart uploads, absent for single PUTs. */
  readonly parts?: readonly CompletedPart[];
}

export interface CompleteUploadResponse {
  /** Where the file landed, as the user sees it, e.g. `~/data (1).csv`. */
  readonly path: string;
  readonly size: number;
  /** Hex SHA-256 of the bytes written, computed inside the container. */
  readonly sha256: string;
}

/** What a page may pick as a download's `progressId`. */
export const progressIdPattern = '^[A-Za-z0-9_-]{8,64}$';

export interface DownloadRequest {
  /** Relative to `~` or absolute inside `$HOME`. A directory comes as a `.tar.gz`. */
  readonly path: string;
  /**
   * Optional, picked by the page (8 to 64 of `A-Z a-z 0-9 _ -`): follow the copy from the home into
   * S3 with `GET …/downloads/progress/:progressId` while this request runs.
   */
  readonly progressId?: string;
}

export interface DownloadProgressResponse {
  /** Bytes copied from the home into S3 so far. */
  readonly bytes: number;
  /** The file's size; absent for a folder (its `.tar.gz` has no size until it is done). */
  readonly size?: number;
}

export interface DownloadResponse {
  /** Presigned GET with a safe `Content-Disposition: attachment`. */
  readonly url: string;
  /** The file name the browser saves as (`<dir>.tar.gz` for a directory). */
  readonly name: string;
  readonly size: number;
}

export interface FileEntry {
  readonly name: string;
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  /** Bytes; 0 for directories. */
  readonly size: number;
  /** Last modification, ISO 8601. */
  readonly modifiedAt: string;
}

export interface FileListing {
  /** The listed folder as the user sees it, e.g. `~/projects`. */
  readonly dir: string;
  readonly entries: readonly FileEntry[];
  /** True when the folder has more entries than were returned. */
  readonly truncated: boolean;
}

/** Error codes of this area a page may want to tell apart. */
export const FileErrorCode = {
  /** Bad name or path (400); `reason` says which rule. */
  invalidName: 'COVE_ERR_FILES_INVALID_NAME',
  invalidPath: 'COVE_ERR_FILES_INVALID_PATH',
  /** Over the per-file limit (413; `limitBytes`). */
  tooLarge: 'COVE_ERR_FILES_TOO_LARGE',
  /** Not enough free space in the home: 413 before signing (`freeBytes`, `neededBytes`), 507 mid-write. */
  homeFull: 'COVE_ERR_FILES_HOME_FULL',
  notFound: 'COVE_ERR_FILES_NOT_FOUND',
  /** The user's other transfers hold their staging allowance (429; `usedBytes`, `limitBytes`). */
  stagingFull: 'COVE_ERR_FILES_STAGING_FULL',
  tooManyDownloads: 'COVE_ERR_FILES_TOO_MANY_DOWNLOADS',
  /** The server's staging disk is down to its reserve (507). */
  hostFull: 'COVE_ERR_FILES_HOST_FULL',
  /** The bytes in S3 are not what was declared (400). */
  sizeMismatch: 'COVE_ERR_FILES_SIZE_MISMATCH',
  /** S3 or the staging bucket cannot be used right now (503). */
  unavailable: 'COVE_ERR_FILES_UNAVAILABLE',
} as const;
