// The everyday workflow's steps with the MinIO JavaScript SDK, as an application would write
// it. Steps come on stdin, one JSON line each (see steps.mjs).
// The application's configuration (MinIO's SDK reads no environment of its own):
// S3_HOST, S3_PORT, S3_USE_SSL ("1"/"0"), S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_PART_SIZE.
import { serve } from "./steps.mjs";
import * as Minio from "minio";

const env = process.env;
const options = {
  endPoint: env.S3_HOST,
  port: Number(env.S3_PORT),
  useSSL: env.S3_USE_SSL === "1",
  accessKey: env.S3_ACCESS_KEY,
  secretKey: env.S3_SECRET_KEY,
};
if (env.S3_REGION) options.region = env.S3_REGION;
if (env.S3_PART_SIZE) options.partSize = Number(env.S3_PART_SIZE);
const mc = new Minio.Client(options);

function collect(stream) {
  return new Promise((resolve, reject) => {
    const items = [];
    stream.on("data", (item) => items.push(item));
    stream.on("error", reject);
    stream.on("end", () => resolve(items));
  });
}

const ops = {
  async mb({ bucket }) {
    await mc.makeBucket(bucket);
    return {};
  },
  async lsb() {
    return { buckets: (await mc.listBuckets()).map((b) => b.name) };
  },
  async put({ bucket, key, file }) {
    const out = await mc.fPutObject(bucket, key, file, { "Content-Type": "application/octet-stream" });
    return { etag: out.etag };
  },
  async upload({ bucket, key, file }) {
    return ops.put({ bucket, key, file });
  },
  async ls({ bucket, prefix, delimiter }) {
    if (delimiter !== "/") throw new Error("minio-js lists with '/' or recursively");
    const items = await collect(mc.listObjectsV2(bucket, prefix, false));
    return {
      keys: items.filter((i) => i.name !== undefined).map((i) => i.name),
      prefixes: items.filter((i) => i.prefix !== undefined).map((i) => i.prefix),
    };
  },
  async get({ bucket, key, file }) {
    await mc.fGetObject(bucket, key, file);
    return {};
  },
  async cp({ bucket, src, dst }) {
    const out = await mc.copyObject(
      new Minio.CopySourceOptions({ Bucket: bucket, Object: src }),
      new Minio.CopyDestinationOptions({ Bucket: bucket, Object: dst }),
    );
    return { etag: out.Etag };
  },
  async presign({ bucket, key }) {
    return { url: await mc.presignedGetObject(bucket, key, 600) };
  },
  async rm({ bucket, key }) {
    await mc.removeObject(bucket, key);
    return {};
  },
  async rmmany({ bucket, keys }) {
    const out = await mc.removeObjects(bucket, keys);
    return { result: out };
  },
  async rb({ bucket }) {
    await mc.removeBucket(bucket);
    return {};
  },
};

await serve(ops);
