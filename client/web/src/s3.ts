// What every presigned PUT to S3 needs from the page: the headers to send and the checksum.

// Headers that the browser sets itself: a script may not set them (fetch drops them), and the
// browser's own values equal the signed ones (the length of the body, the URL's host).
const BROWSER_OWNED_HEADERS = new Set(["content-length", "host"]);

/** The signed headers a script sends: every required one but those the browser owns. */
export function headersToSend(required: { [name: string]: string }): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(required)) {
    if (!BROWSER_OWNED_HEADERS.has(name.toLowerCase())) {
      headers.set(name, value);
    }
  }
  return headers;
}

/** Base64 SHA-256 for x-amz-checksum-sha256; "" (no checksum) outside a secure context. */
export async function sha256Base64(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  if (!globalThis.isSecureContext || globalThis.crypto?.subtle === undefined) {
    return "";
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let binary = "";
  for (const byte of digest) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}
