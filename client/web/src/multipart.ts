// Large files in parts (S3 multipart through the service): CreateMultipartUpload, part URLs
// signed up to 100 at a time (and again near their expiry or when S3 refuses one as expired),
// a bounded number of parts in flight, each retried on its own. The upload's id is kept in
// localStorage under the file's name, size and lastModified, so that the same file picked again
// after a reload (or a crash) sends only the parts S3 does not hold yet (ListUploadedParts).

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { PhotoService, type UploadPartUrl } from "./gen/photovault/v1/photo_service_pb.js";
import { headersToSend, sha256Base64 } from "./s3.js";

type PhotoClient = Client<typeof PhotoService>;

// Files larger than this go in parts (the service takes single PUTs up to 25 MiB by default).
const DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024;
const DEFAULT_PARTS_IN_FLIGHT = 4;
const MAX_PARTS_PER_SIGN = 100; // the service signs at most 100 parts per call
// A URL this close to its expiry is signed again before use: a slow part never starts late.
const RESIGN_MARGIN_MS = 2 * 60_000;
const PART_ATTEMPTS = 4;
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const STATE_PREFIX = "photovault.upload:";

export interface PartsSettings {
  /** Files above this many bytes go in parts. */
  threshold: number;
  partsInFlight: number;
}

/** Defaults, overridden by ?multipart_threshold= and ?parts_in_flight= (bytes, count). */
export function partsSettings(params: URLSearchParams): PartsSettings {
  const positive = (name: string, fallback: number): number => {
    const value = Number(params.get(name) ?? "");
    return Number.isSafeInteger(value) && value > 0 ? value : fallback;
  };
  return {
    threshold: positive("multipart_threshold", DEFAULT_MULTIPART_THRESHOLD),
    partsInFlight: positive("parts_in_flight", DEFAULT_PARTS_IN_FLIGHT),
  };
}

/** What resuming needs, kept until the upload is confirmed. */
interface SavedUpload {
  fileName: string;
  size: number;
  lastModified: number;
  uploadId: string;
  partSize: number;
}

function stateKey(file: File): string {
  return STATE_PREFIX + JSON.stringify([file.name, file.size, file.lastModified]);
}

function loadUpload(file: File): SavedUpload | undefined {
  try {
    const saved = JSON.parse(localStorage.getItem(stateKey(file)) ?? "null") as SavedUpload | null;
    return saved !== null && typeof saved.uploadId === "string" && saved.partSize > 0
      ? saved
      : undefined;
  } catch {
    return undefined; // unreadable state: start again
  }
}

/** Forgets the file's upload (once confirmed, or when S3 no longer knows it). */
export function forgetUpload(file: File): void {
  localStorage.removeItem(stateKey(file));
}

function isNotFound(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.NotFound;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class FilePart {
  constructor(
    readonly file: File,
    readonly partSize: number,
  ) {}

  get count(): number {
    return Math.ceil(this.file.size / this.partSize);
  }

  length(number: number): number {
    return Math.min(this.partSize, this.file.size - (number - 1) * this.partSize);
  }

  async bytes(number: number): Promise<Uint8Array<ArrayBuffer>> {
    const start = (number - 1) * this.partSize;
    return new Uint8Array(await this.file.slice(start, start + this.length(number)).arrayBuffer());
  }
}

/** Part URLs for the parts still to send, signed in batches; one signing call at a time. */
class PartUrls {
  private readonly urls = new Map<number, UploadPartUrl>();
  private readonly checksums = new Map<number, string>();
  private readonly pending: Set<number>;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly pv: PhotoClient,
    private readonly uploadId: string,
    private readonly parts: FilePart,
    pending: number[],
  ) {
    this.pending = new Set(pending);
  }

  get(number: number): Promise<UploadPartUrl> {
    const next = this.queue.then(() => this.signed(number));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** S3 refused the URL (expired, or its credentials rotated): sign it again next time. */
  forget(number: number): void {
    this.urls.delete(number);
  }

  stored(number: number): void {
    this.pending.delete(number);
    this.urls.delete(number);
  }

  private async signed(number: number): Promise<UploadPartUrl> {
    const known = this.urls.get(number);
    if (known !== undefined && !expiring(known)) {
      return known;
    }
    // This part and the next ones still without a fresh URL: parts in flight ask in any
    // order, and one call serves them all.
    const unsigned = [...this.pending].filter((n) => {
      const url = this.urls.get(n);
      return n !== number && (url === undefined || expiring(url));
    });
    const batch = [number, ...unsigned.slice(0, MAX_PARTS_PER_SIGN - 1)];
    const checksums = await this.checksumsOf(batch);
    const response = await this.pv.signUploadParts({
      uploadId: this.uploadId,
      partNumbers: batch,
      checksumsSha256: checksums,
    });
    for (const part of response.parts) {
      this.urls.set(part.partNumber, part);
    }
    const url = this.urls.get(number);
    if (url === undefined) {
      throw new Error(`SignUploadParts returned no URL for part ${number}`);
    }
    return url;
  }

  /** Each part's SHA-256, signed into its URL so that S3 refuses other bytes; none at all
   * outside a secure context (the service takes all or none). */
  private async checksumsOf(batch: number[]): Promise<string[]> {
    const checksums: string[] = [];
    for (const number of batch) {
      let checksum = this.checksums.get(number);
      if (checksum === undefined) {
        checksum = await sha256Base64(await this.parts.bytes(number));
        this.checksums.set(number, checksum);
      }
      if (checksum === "") {
        return [];
      }
      checksums.push(checksum);
    }
    return checksums;
  }
}

function expiring(url: UploadPartUrl): boolean {
  return (
    url.expireTime !== undefined &&
    timestampDate(url.expireTime).getTime() - RESIGN_MARGIN_MS <= Date.now()
  );
}

async function putPart(urls: PartUrls, parts: FilePart, number: number): Promise<void> {
  const body = await parts.bytes(number);
  let problem = "";
  for (let attempt = 1; attempt <= PART_ATTEMPTS; attempt += 1) {
    const url = await urls.get(number);
    let response: Response;
    try {
      response = await fetch(url.url, {
        method: url.method || "PUT",
        headers: headersToSend(url.requiredHeaders),
        body,
      });
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
      await sleep(250 * 2 ** attempt);
      continue;
    }
    // Read the answer to its end either way (an unread body leaves the request to be aborted).
    const answer = await response.text().catch(() => "");
    if (response.ok) {
      urls.stored(number);
      return;
    }
    problem = `HTTP ${response.status} ${answer.slice(0, 300)}`;
    if (response.status === 403) {
      urls.forget(number);
    } else if (!RETRY_STATUSES.has(response.status)) {
      break;
    }
    await sleep(250 * 2 ** attempt);
  }
  throw new Error(`S3 refused part ${number} of ${parts.file.name}: ${problem}`);
}

/** The upload id of a saved upload of `file` that S3 still holds, with the parts it holds. */
async function resumable(
  pv: PhotoClient,
  file: File,
): Promise<{ saved: SavedUpload; held: Map<number, bigint> } | undefined> {
  const saved = loadUpload(file);
  if (saved === undefined) {
    return undefined;
  }
  try {
    const listed = await pv.listUploadedParts({ uploadId: saved.uploadId });
    return { saved, held: new Map(listed.parts.map((part) => [part.partNumber, part.sizeBytes])) };
  } catch (error) {
    if (isNotFound(error)) {
      // Confirmed, aborted or expired meanwhile (or another user's): start again.
      forgetUpload(file);
      return undefined;
    }
    throw error;
  }
}

/** Sends every part of `file` that S3 does not hold yet; returns the upload id to confirm.
 * `onProgress` gets the number of parts stored so far and the number of parts. */
export async function uploadInParts(
  pv: PhotoClient,
  file: File,
  settings: PartsSettings,
  onProgress: (stored: number, count: number) => void,
): Promise<string> {
  let resumed = await resumable(pv, file);
  if (resumed === undefined) {
    // The service picks the part size (S3's 5 MiB minimum and 10,000 parts). No whole-file
    // checksum: the page would have to read the whole file once more before the first part.
    const created = await pv.createMultipartUpload({
      fileName: file.name,
      contentType: file.type,
      sizeBytes: BigInt(file.size),
      checksumSha256: "",
    });
    const saved: SavedUpload = {
      fileName: file.name,
      size: file.size,
      lastModified: file.lastModified,
      uploadId: created.uploadId,
      partSize: Number(created.partSizeBytes),
    };
    localStorage.setItem(stateKey(file), JSON.stringify(saved));
    resumed = { saved, held: new Map() };
  }
  const { saved, held } = resumed;
  const parts = new FilePart(file, saved.partSize);
  // A part S3 holds with another length is sent again.
  const pending: number[] = [];
  for (let number = 1; number <= parts.count; number += 1) {
    if (held.get(number) !== BigInt(parts.length(number))) {
      pending.push(number);
    }
  }
  let stored = parts.count - pending.length;
  onProgress(stored, parts.count);
  const urls = new PartUrls(pv, saved.uploadId, parts, pending);
  const queue = [...pending];
  const worker = async (): Promise<void> => {
    for (let number = queue.shift(); number !== undefined; number = queue.shift()) {
      try {
        await putPart(urls, parts, number);
      } catch (error) {
        queue.length = 0; // the other workers stop after their part in flight
        throw error;
      }
      stored += 1;
      onProgress(stored, parts.count);
    }
  };
  const workers = Math.min(settings.partsInFlight, pending.length);
  await Promise.all(Array.from({ length: workers }, worker));
  return saved.uploadId;
}
