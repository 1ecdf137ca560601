"""The readiness report where it is served and across worker processes: in enforce mode the refused
requests are findings too, and with a metrics listener the report moves there (the main listener
then treats /report as S3: unsigned, refused); with several workers each one's report adds the
others' saved findings."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.gateway_process import GatewayProcess, free_port

pytestmark = pytest.mark.rgw


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_enforce_mode_reports_what_it_refused_on_the_metrics_listener(rgw, rgw_s3, tmp_path):
    metrics = f"127.0.0.1:{free_port()}"
    gw = GatewayProcess(tmp_path, upstream=rgw, tls=False, name="gateway-enforce-report",
                        env={"R2GW_METRICS_LISTEN": metrics})
    bucket = "ready-enf-" + uuid.uuid4().hex[:8]
    rgw_s3.create_bucket(Bucket=bucket)
    gw.start()
    try:
        s3 = gw.client()
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
        assert e.value.response["Error"]["Code"] == "NotImplemented"
        status, body = _get(f"http://{metrics}/report.json")
        assert status == 200
        doc = json.loads(body)
        assert doc["mode"] == "enforce"
        (f,) = doc["findings"]
        assert (f["finding"], f["operation"], f["bucket"]) == ("x-amz-acl", "PutObject", bucket)
        assert (f["example"]["status"], f["example"]["error_code"]) == (501, "NotImplemented")
        status, page = _get(f"http://{metrics}/report")
        assert status == 200 and b"x-amz-acl" in page
        # not on the main listener: there it is a (refused) S3 request for the bucket "report"
        status, body = _get(gw.endpoint + "/report.json")
        assert status == 403 and b"AccessDenied" in body
    finally:
        gw.stop()
        rgw_s3.delete_bucket(Bucket=bucket)


def test_workers_add_each_others_saved_findings(rgw, rgw_s3, tmp_path):
    state = tmp_path / "state" / "readiness.json"
    gw = GatewayProcess(tmp_path, upstream=rgw, tls=False, workers=2, name="gateway-workers-report",
                        env={"R2GW_MODE": "audit", "R2GW_REPORT_STATE_FILE": str(state),
                             "R2GW_REPORT_SAVE_SECONDS": "0.5"})
    bucket = "ready-wk-" + uuid.uuid4().hex[:8]
    rgw_s3.create_bucket(Bucket=bucket)
    gw.start()
    try:
        for _ in range(24):   # a new connection each: the kernel spreads them over both workers
            gw.client().get_bucket_versioning(Bucket=bucket)
        time.sleep(1.5)       # every worker has saved
        counts = set()
        for _ in range(6):
            doc = json.loads(_get(gw.endpoint + "/report.json")[1])
            counts.add(sum(f["count"] for f in doc["findings"] if f["finding"] == "GetBucketVersioning"))
        assert counts == {24}
    finally:
        gw.stop()
        rgw_s3.delete_bucket(Bucket=bucket)
    saved = [json.loads((state.parent / f"readiness.json.{i}").read_text()) for i in range(2)]
    per_worker = [sum(r["count"] for r in s["rows"]) for s in saved]
    assert sum(per_worker) == 24 and all(per_worker), per_worker   # both served some
