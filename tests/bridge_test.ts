/**
 * The viewer bridge over real HTTP: a viewer registers and long-polls; the panel lists it, asks
 * for its active image (answered by the viewer's upload), and sends a result back (the viewer
 * gets a show-result command; edited labels replace the job's masks first).
 */
import { assert, assertEquals } from "./assert.ts";
import { startTinyServer } from "./e2e.ts";
import { encodeTiff } from "../io/tiff_write.ts";

const post = (url: string, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", body, headers });

Deno.test({
  name: "bridge: register, image request answered by the viewer, result sent back, bad ids",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startTinyServer();
    const b = `${server.url}/v1/bridge`;
    try {
      const reg = await post(`${b}/register`, JSON.stringify({ name: "ImageJ 1.53t" }), {
        "content-type": "application/json",
      });
      assertEquals(reg.status, 201);
      const { id } = await reg.json();
      assertEquals((await (await fetch(b)).json()).viewers, [{ id, name: "ImageJ 1.53t" }]);

      // nothing queued: the long poll ends with "none"
      assertEquals(await (await fetch(`${b}/${id}/next?wait=0.1`)).json(), { type: "none" });

      // the panel asks for the image while the viewer is polling
      const poll = fetch(`${b}/${id}/next?wait=5`).then((r) => r.json());
      const asked = fetch(`${b}/${id}/image?wait=5`);
      assertEquals(await poll, { type: "send-image" });
      const pixels = new Uint8Array([1, 2, 3, 4, 5, 6]);
      const tiff = encodeTiff({ data: pixels, shape: [2, 3] });
      const form = new FormData();
      form.set("image", new Blob([tiff as BlobPart]), "cells.tif");
      assertEquals((await post(`${b}/${id}/image`, form)).status, 200);
      const got = await asked;
      assertEquals(got.status, 200);
      assertEquals(got.headers.get("x-image-name"), "cells.tif");
      assertEquals(new Uint8Array(await got.arrayBuffer()), tiff);

      // the viewer can say it has no image: the panel's request fails with its message
      const poll2 = fetch(`${b}/${id}/next?wait=5`).then((r) => r.json());
      const asked2 = fetch(`${b}/${id}/image?wait=5`);
      await poll2;
      await post(`${b}/${id}/error`, JSON.stringify({ message: "No image is open in ImageJ." }), {
        "content-type": "application/json",
      });
      const refused = await asked2;
      assertEquals(refused.status, 422);
      assertEquals((await refused.json()).error.message, "No image is open in ImageJ.");

      // a finished job sent to the viewer, with edited labels replacing its masks
      const job = await (await post(`${server.url}/v1/segment`, tiff as Uint8Array<ArrayBuffer>, {
        "content-type": "image/tiff",
      })).json();
      await (await fetch(`${server.url}/v1/jobs/${job.id}/events`)).text(); // the stream ends with the job
      const jobs = [job];
      const edited = encodeTiff({ data: new Uint16Array([0, 1, 1, 0, 2, 2]), shape: [2, 3] });
      const show = new FormData();
      show.set("job", jobs[0].id);
      show.set("title", "cells.tif");
      show.set("labels", new Blob([edited as BlobPart]), "labels.tif");
      assertEquals((await post(`${b}/${id}/show`, show)).status, 200);
      assertEquals(await (await fetch(`${b}/${id}/next?wait=1`)).json(), {
        type: "show-result",
        job: jobs[0].id,
        title: "cells.tif",
      });
      const masks = await fetch(`${server.url}/v1/jobs/${jobs[0].id}/result?format=json`).then((
        r,
      ) => r.json());
      assertEquals(masks.nMasks, 2);

      // unknown viewer and bad wait are 4xx naming the field
      const unknown = await fetch(`${b}/nope/next`);
      assertEquals(unknown.status, 404);
      assertEquals((await unknown.json()).error.field, "id");
      const badWait = await fetch(`${b}/${id}/next?wait=abc`);
      assertEquals(badWait.status, 400);
      assert((await badWait.json()).error.message.includes("wait"));
    } finally {
      await server.cleanup();
    }
  },
});
