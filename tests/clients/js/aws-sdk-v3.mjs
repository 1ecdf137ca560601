// The everyday workflow's steps with the AWS SDK for JavaScript v3, as an application would
// write it. Steps come on stdin, one JSON line each (see steps.mjs).
// Configuration comes the SDK's usual ways: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
// AWS_REGION, AWS_ENDPOINT_URL_S3 and NODE_EXTRA_CA_CERTS (environment). Everything else is
// the SDK's default (checksums, addressing style, part size, retries).
import { serve } from "./steps.mjs";
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import {
  S3Client,
  CreateBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
  GetObjectCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteBucketCommand,
  paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const s3 = new S3Client({});
// what went on the wire, for the tests: the hosts (which addressing style the SDK chose) and, for
// uploads, the payload mode and trailer (x-amz-content-sha256, x-amz-trailer)
const hosts = new Set();
const uploads = new Set();
s3.middlewareStack.add((next) => async (args) => {
  const { request } = args;
  hosts.add(`${request.hostname}:${request.port}`);
  if (request.method === "PUT" && !request.headers["x-amz-copy-source"] && request.body) {
    uploads.add(JSON.stringify([request.headers["x-amz-content-sha256"] ?? "", request.headers["x-amz-trailer"] ?? ""]));
  }
  return next(args);
}, { step: "deserialize", name: "recordWire" });

const ops = {
  async mb({ bucket }) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    return {};
  },
  async lsb() {
    const out = await s3.send(new ListBucketsCommand({}));
    return { buckets: (out.Buckets ?? []).map((b) => b.Name) };
  },
  // a small file: PutObject with a file stream (the SDK sends it aws-chunked with a CRC32 trailer)
  async put({ bucket, key, file }) {
    const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(file) }));
    return { etag: out.ETag };
  },
  // a large file: lib-storage's managed multipart upload (5 MiB parts, 4 in flight)
  async upload({ bucket, key, file }) {
    const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: createReadStream(file) } });
    const out = await upload.done();
    return { etag: out.ETag };
  },
  async ls({ bucket, prefix, delimiter }) {
    const keys = [];
    const prefixes = [];
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix, Delimiter: delimiter })) {
      for (const o of page.Contents ?? []) keys.push(o.Key);
      for (const p of page.CommonPrefixes ?? []) prefixes.push(p.Prefix);
    }
    return { keys, prefixes };
  },
  async get({ bucket, key, file }) {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    await pipeline(out.Body, createWriteStream(file));
    return { etag: out.ETag };
  },
  async cp({ bucket, src, dst }) {
    const out = await s3.send(new CopyObjectCommand({
      Bucket: bucket, Key: dst, CopySource: `${bucket}/${encodeURIComponent(src)}`,
    }));
    return { etag: out.CopyObjectResult?.ETag };
  },
  async presign({ bucket, key }) {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 });
    return { url };
  },
  async rm({ bucket, key }) {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    return {};
  },
  async rmmany({ bucket, keys }) {
    const out = await s3.send(new DeleteObjectsCommand({
      Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: false },
    }));
    return { deleted: (out.Deleted ?? []).map((d) => d.Key), errors: out.Errors ?? [] };
  },
  async rb({ bucket }) {
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    return {};
  },
};

await serve(ops, () => ({ _hosts: [...hosts], _uploads: [...uploads].map((u) => JSON.parse(u)) }));
