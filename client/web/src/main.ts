// PhotoVault gallery: uploads images straight to S3 through presigned URLs and shows the
// caller's photos, calling the service over gRPC-web (connect-web) with the generated client.
//
// Upload of one file: CreateUploadUrl → PUT the bytes to the presigned URL with exactly the
// returned headers → ConfirmUpload; a large file goes in parts instead (multipart.ts), resumed
// when picked again after a reload. The gallery is one ListPhotos page; each <img> loads its
// presigned GET URL. Defaults for the gateway URL and the token come from ?api= and ?token=.
//
// Sharing: each tile's Share button makes a 7-day share link to that photo (CreateShareLink)
// and shows the page's own URL with ?share=TOKEN. Opened with ?api=…&share=TOKEN, the page is
// the share view instead: GetSharedAlbum without any bearer token (asking for a password when
// the link has one), its photos' variants only.

import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { thumbHashToDataURL } from "thumbhash";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { SharedPhoto } from "./gen/photovault/v1/album_pb.js";
import type { Photo } from "./gen/photovault/v1/photo_pb.js";
import { PhotoService } from "./gen/photovault/v1/photo_service_pb.js";
import { forgetUpload, partsSettings, uploadInParts, type PartsSettings } from "./multipart.js";
import { headersToSend, sha256Base64 } from "./s3.js";

type PhotoClient = Client<typeof PhotoService>;
type State = "idle" | "uploading" | "loading" | "ready" | "error";

const GALLERY_PAGE_SIZE = 100;

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) {
    throw new Error(`page is missing #${id}`);
  }
  return found;
}

const ui = {
  api: element("api", HTMLInputElement),
  token: element("token", HTMLInputElement),
  files: element("files", HTMLInputElement),
  tags: element("tags", HTMLInputElement),
  uploadForm: element("upload-form", HTMLFormElement),
  query: element("query", HTMLInputElement),
  tagFilter: element("tag-filter", HTMLInputElement),
  searchForm: element("search-form", HTMLFormElement),
  status: element("status", HTMLParagraphElement),
  gallery: element("gallery", HTMLDivElement),
  owner: element("owner", HTMLDivElement),
  share: element("share", HTMLElement),
  shareTitle: element("share-title", HTMLHeadingElement),
  shareForm: element("share-form", HTMLFormElement),
  sharePassword: element("share-password", HTMLInputElement),
};

const SHARE_LIFETIME_MS = 7 * 24 * 3600 * 1000;

let finished = 0;

/** Shows the state in the status line and on <body data-state>; each action that ends (ready or
 * error) also bumps <body data-finished>, so a script driving the page can wait for it. */
function setState(state: State, message: string): void {
  document.body.dataset["state"] = state;
  if (state === "ready" || state === "error") {
    finished += 1;
    document.body.dataset["finished"] = String(finished);
  }
  ui.status.textContent = message;
  ui.status.classList.toggle("error", state === "error");
}

function describe(error: unknown): string {
  if (error instanceof ConnectError) {
    return `${Code[error.code]}: ${error.rawMessage}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function parseTags(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
}

function photoClient(): PhotoClient {
  const baseUrl = ui.api.value.trim().replace(/\/+$/, "");
  const token = ui.token.value.trim().replace(/^Bearer\s+/i, "");
  if (baseUrl === "") {
    throw new Error("enter the gateway URL");
  }
  if (token === "") {
    throw new Error("paste a dev token");
  }
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createGrpcWebTransport({
    baseUrl,
    interceptors: [bearer],
    defaultTimeoutMs: 15_000,
  });
  return createClient(PhotoService, transport);
}

/** A client without any bearer token: GetSharedAlbum is the one RPC served that way. */
function anonymousClient(): PhotoClient {
  const baseUrl = ui.api.value.trim().replace(/\/+$/, "");
  if (baseUrl === "") {
    throw new Error("the share link has no gateway URL (?api=)");
  }
  return createClient(PhotoService, createGrpcWebTransport({ baseUrl, defaultTimeoutMs: 15_000 }));
}

function titleOf(fileName: string): string {
  const dot = fileName.lastIndexOf(".");
  return (dot > 0 ? fileName.slice(0, dot) : fileName).slice(0, 200);
}

async function uploadWhole(pv: PhotoClient, file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const ticket = await pv.createUploadUrl({
    fileName: file.name,
    contentType: file.type,
    sizeBytes: BigInt(bytes.byteLength),
    checksumSha256: await sha256Base64(bytes),
  });
  const put = await fetch(ticket.uploadUrl, {
    method: ticket.method || "PUT",
    headers: headersToSend(ticket.requiredHeaders),
    body: bytes,
  });
  // Read the answer to its end either way (an unread body leaves the request to be aborted).
  const answer = await put.text().catch(() => "");
  if (!put.ok) {
    throw new Error(`S3 refused ${file.name}: HTTP ${put.status} ${answer.slice(0, 300)}`);
  }
  return ticket.uploadId;
}

async function uploadOne(
  pv: PhotoClient,
  file: File,
  tags: string[],
  parts: PartsSettings,
  onParts: (stored: number, count: number) => void,
): Promise<Photo> {
  const inParts = file.size > parts.threshold;
  const uploadId = inParts
    ? await uploadInParts(pv, file, parts, onParts)
    : await uploadWhole(pv, file);
  const confirmed = await pv.confirmUpload({ uploadId, title: titleOf(file.name), tags });
  if (confirmed.photo === undefined) {
    throw new Error(`ConfirmUpload returned no photo for ${file.name}`);
  }
  if (inParts) {
    forgetUpload(file);
  }
  return confirmed.photo;
}

// A URL can expire while the page stays open (or come from a cache older than it): when an
// image fails to load, ask the service for a fresh URL once, instead of a broken tile.
async function reloadWithFreshUrl(
  pv: PhotoClient,
  img: HTMLImageElement,
  id: string,
  variant: string,
): Promise<void> {
  if (img.dataset["refreshed"]) return;
  img.dataset["refreshed"] = "1";
  const response = await pv.batchGetPhotoUrls({ photoIds: [id], variant });
  const fresh = response.urls[0]?.url;
  if (fresh && fresh !== img.src) img.src = fresh;
}

const THUMB = "thumb";
const PREVIEW = "preview";

// The ThumbHash the worker stored, as a tiny PNG data URL (empty until the photo is processed
// or when the hash is unreadable: the tile then waits on a plain background).
function placeholderUrl(placeholder: string): string {
  if (placeholder === "") return "";
  try {
    return thumbHashToDataURL(Uint8Array.from(atob(placeholder), (c) => c.charCodeAt(0)));
  } catch {
    return "";
  }
}

// A tile: the blurred placeholder at once, the `thumb` variant over it once loaded (the
// original until the photo is processed), and the `preview` (else the original) on click.
function photoCard(pv: PhotoClient, photo: Photo): HTMLElement {
  const figure = document.createElement("figure");
  figure.dataset["photoId"] = photo.id;
  const thumb = photo.variants.find((v) => v.name === THUMB);
  const preview = photo.variants.find((v) => v.name === PREVIEW);
  const link = document.createElement("a");
  link.href = preview?.url ?? photo.url;
  link.target = "_blank";
  link.rel = "noopener";
  const img = document.createElement("img");
  img.addEventListener("error", () => {
    reloadWithFreshUrl(pv, img, photo.id, thumb ? THUMB : "").catch(() => undefined);
  });
  const blurred = placeholderUrl(photo.placeholder);
  if (blurred !== "") {
    img.style.background = `#f4f4f4 url("${blurred}") center / contain no-repeat`;
    img.style.imageRendering = "auto";
  }
  img.src = thumb?.url ?? photo.url;
  img.alt = photo.title || photo.fileName;
  img.decoding = "async";
  link.append(img);
  const caption = document.createElement("figcaption");
  const title = document.createElement("strong");
  title.className = "title";
  title.textContent = photo.title || photo.fileName;
  const tags = document.createElement("div");
  tags.className = "tags";
  tags.textContent = photo.tags.map((tag) => `#${tag}`).join(" ");
  const meta = document.createElement("small");
  const pixels = photo.width > 0 ? `, ${photo.width}×${photo.height}` : "";
  meta.textContent = `${photo.contentType}, ${photo.sizeBytes} bytes${pixels}`;
  const share = document.createElement("button");
  share.type = "button";
  share.className = "share";
  share.textContent = "Share";
  share.addEventListener("click", () => {
    void sharePhoto(pv, photo, figure);
  });
  caption.append(title, tags, meta, share);
  figure.append(link, caption);
  return figure;
}

/** Makes a 7-day link to the photo and shows this page's URL for it (?api=…&share=TOKEN). */
async function sharePhoto(pv: PhotoClient, photo: Photo, figure: HTMLElement): Promise<void> {
  try {
    setState("loading", "Creating a share link…");
    const created = await pv.createShareLink({
      photoId: photo.id,
      expireTime: timestampFromDate(new Date(Date.now() + SHARE_LIFETIME_MS)),
    });
    const token = created.shareLink?.token ?? "";
    const url = new URL(location.pathname, location.origin);
    url.searchParams.set("api", ui.api.value.trim());
    url.searchParams.set("share", token);
    let field = figure.querySelector<HTMLInputElement>("input.share-url");
    if (field === null) {
      field = document.createElement("input");
      field.className = "share-url";
      field.readOnly = true;
      figure.append(field);
    }
    field.value = url.toString();
    setState("ready", "Share link created (7 days): copy it from the tile");
  } catch (error) {
    setState("error", describe(error));
  }
}

// A shared photo's tile: its thumb (variants only, unless the link allows originals), the
// preview on click; nothing about its owner, file, camera or place is ever sent.
function sharedCard(photo: SharedPhoto): HTMLElement {
  const figure = document.createElement("figure");
  figure.dataset["photoId"] = photo.id;
  const thumb = photo.variants.find((v) => v.name === THUMB);
  const preview = photo.variants.find((v) => v.name === PREVIEW);
  const link = document.createElement("a");
  link.href = preview?.url ?? photo.url;
  link.target = "_blank";
  link.rel = "noopener";
  const img = document.createElement("img");
  const blurred = placeholderUrl(photo.placeholder);
  if (blurred !== "") {
    img.style.background = `#f4f4f4 url("${blurred}") center / contain no-repeat`;
  }
  img.src = thumb?.url ?? photo.url;
  img.alt = photo.title;
  link.append(img);
  const caption = document.createElement("figcaption");
  const title = document.createElement("strong");
  title.className = "title";
  title.textContent = photo.title;
  caption.append(title);
  figure.append(link, caption);
  return figure;
}

async function showShared(token: string): Promise<void> {
  try {
    const pv = anonymousClient();
    setState("loading", "Loading the shared photos…");
    const view = await pv.getSharedAlbum({
      token,
      password: ui.sharePassword.value,
      pageSize: GALLERY_PAGE_SIZE,
    });
    ui.shareTitle.textContent = view.title;
    ui.shareForm.hidden = true;
    ui.gallery.replaceChildren(...view.photos.map((photo) => sharedCard(photo)));
    setState("ready", `${view.photos.length} shared photo${view.photos.length === 1 ? "" : "s"}`);
  } catch (error) {
    // Unknown, revoked and expired links and wrong passwords are all NOT_FOUND: offer the
    // password field (a link with a password says so in the message).
    if (error instanceof ConnectError && error.code === Code.NotFound) {
      ui.shareForm.hidden = false;
    }
    setState("error", describe(error));
  }
}

async function refreshGallery(pv: PhotoClient): Promise<number> {
  const response = await pv.listPhotos({
    pageSize: GALLERY_PAGE_SIZE,
    query: ui.query.value.trim(),
    tags: parseTags(ui.tagFilter.value),
  });
  ui.gallery.replaceChildren(...response.photos.map((photo) => photoCard(pv, photo)));
  return response.photos.length;
}

async function showGallery(): Promise<void> {
  try {
    const pv = photoClient();
    setState("loading", "Loading…");
    const count = await refreshGallery(pv);
    setState("ready", `${count} photo${count === 1 ? "" : "s"}`);
  } catch (error) {
    setState("error", describe(error));
  }
}

async function uploadChosen(): Promise<void> {
  const files = Array.from(ui.files.files ?? []);
  if (files.length === 0) {
    setState("error", "choose one or more images first");
    return;
  }
  try {
    const pv = photoClient();
    const tags = parseTags(ui.tags.value);
    const parts = partsSettings(new URLSearchParams(location.search));
    for (const [index, file] of files.entries()) {
      const uploading = `Uploading ${file.name} (${index + 1}/${files.length})`;
      setState("uploading", `${uploading}…`);
      await uploadOne(pv, file, tags, parts, (stored, count) => {
        setState("uploading", `${uploading}: ${stored} of ${count} parts stored…`);
      });
    }
    ui.files.value = "";
    const count = await refreshGallery(pv);
    setState("ready", `Uploaded ${files.length}; ${count} photo${count === 1 ? "" : "s"} shown`);
  } catch (error) {
    setState("error", describe(error));
  }
}

function start(): void {
  const params = new URLSearchParams(location.search);
  ui.api.value = params.get("api") ?? ui.api.value;
  ui.token.value = params.get("token") ?? ui.token.value;
  const shared = params.get("share");
  if (shared !== null) {
    // The share view: no token, no upload, no search.
    ui.owner.hidden = true;
    ui.share.hidden = false;
    ui.shareForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void showShared(shared);
    });
    void showShared(shared);
    return;
  }
  ui.uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void uploadChosen();
  });
  ui.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void showGallery();
  });
  if (ui.api.value !== "" && ui.token.value !== "") {
    void showGallery();
  }
}

start();
