"""The SeaweedFS bucket helper (roles/seaweedfs/files/s3admin.py) against botocore's Stubber.

The Stubber checks each call's operation and parameters in order and fails on any call not expected, so these
tests pin exactly which S3 calls a converge makes: none that change anything on a bucket already in shape, and
none at all that change anything in check mode. The molecule seaweedfs scenario runs the helper against SeaweedFS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import Stubber

ROOT = Path(__file__).resolve().parents[2]
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": ["s3:PutBucketPolicy"], "Resource": "*"}],
    }
)


@pytest.fixture
def s3(s3admin):
    client = s3admin.client("https://127.0.0.1:8333", "us-east-1", None, "AKIDEXAMPLE", "secret-example")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def _rule(days: int) -> dict:
    return {
        "ID": "eterna-noncurrent-expiry",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": days},
    }


def test_new_bucket_is_created_versioned_and_given_its_rule(s3admin, s3) -> None:
    s3.stub.add_client_error("head_bucket", "404", http_status_code=404, expected_params={"Bucket": "docs"})
    s3.stub.add_response("create_bucket", {}, {"Bucket": "docs"})
    s3.stub.add_response("get_bucket_versioning", {}, {"Bucket": "docs"})
    s3.stub.add_response(
        "put_bucket_versioning", {}, {"Bucket": "docs", "VersioningConfiguration": {"Status": "Enabled"}}
    )
    s3.stub.add_client_error("get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration", http_status_code=404)
    s3.stub.add_response(
        "put_bucket_lifecycle_configuration", {}, {"Bucket": "docs", "LifecycleConfiguration": {"Rules": [_rule(30)]}}
    )
    actions = s3admin.converge(s3, "docs", "Enabled", 30, check=False)
    assert actions == [
        "create bucket docs",
        "set versioning of docs to Enabled (was unset)",
        "set non-current version expiry of docs to 30 days (was 0)",
    ]


def test_bucket_in_shape_makes_no_change(s3admin, s3) -> None:
    s3.stub.add_response("head_bucket", {}, {"Bucket": "docs"})
    s3.stub.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": "docs"})
    s3.stub.add_response("get_bucket_lifecycle_configuration", {"Rules": [_rule(30)]}, {"Bucket": "docs"})
    assert s3admin.converge(s3, "docs", "Enabled", 30, check=False) == []


def test_check_mode_reports_and_changes_nothing(s3admin, s3) -> None:
    s3.stub.add_response("head_bucket", {}, {"Bucket": "docs"})
    s3.stub.add_response("get_bucket_versioning", {"Status": "Suspended"}, {"Bucket": "docs"})
    s3.stub.add_response("get_bucket_lifecycle_configuration", {"Rules": [_rule(90)]}, {"Bucket": "docs"})
    actions = s3admin.converge(s3, "docs", "Enabled", 30, check=True)
    assert actions == [
        "set versioning of docs to Enabled (was Suspended)",
        "set non-current version expiry of docs to 30 days (was 90)",
    ]


def test_missing_bucket_in_check_mode_stops_after_reporting(s3admin, s3) -> None:
    s3.stub.add_client_error("head_bucket", "404", http_status_code=404)
    assert s3admin.converge(s3, "docs", "Enabled", 30, check=True) == ["create bucket docs", "configure bucket docs"]


def test_zero_days_removes_the_rule(s3admin, s3) -> None:
    s3.stub.add_response("head_bucket", {}, {"Bucket": "docs"})
    s3.stub.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": "docs"})
    s3.stub.add_response("get_bucket_lifecycle_configuration", {"Rules": [_rule(7)]}, {"Bucket": "docs"})
    s3.stub.add_response("delete_bucket_lifecycle", {}, {"Bucket": "docs"})
    assert s3admin.converge(s3, "docs", "Enabled", 0, check=False) == [
        "set non-current version expiry of docs to 0 days (was 7)"
    ]


def test_refused_credentials_are_an_error_not_a_missing_bucket(s3admin, s3) -> None:
    from botocore.exceptions import ClientError

    s3.stub.add_client_error("head_bucket", "403", http_status_code=403)
    with pytest.raises(ClientError):
        s3admin.converge(s3, "docs", "Enabled", 30, check=False)


def test_policy_equal_up_to_server_normalisation_is_left_alone(s3admin, s3) -> None:
    # The server turned the one-element Action list into a string and reordered the keys.
    served = {
        "Statement": [{"Resource": "*", "Action": "s3:PutBucketPolicy", "Principal": "*", "Effect": "Deny"}],
        "Version": "2012-10-17",
    }
    s3.stub.add_response("get_bucket_policy", {"Policy": json.dumps(served)}, {"Bucket": "docs"})
    assert s3admin.converge_policy(s3, "docs", POLICY, check=False) == []


def test_absent_policy_is_set(s3admin, s3) -> None:
    s3.stub.add_client_error("get_bucket_policy", "NoSuchBucketPolicy", http_status_code=404)
    s3.stub.add_response("put_bucket_policy", {}, {"Bucket": "docs", "Policy": json.dumps(json.loads(POLICY))})
    assert s3admin.converge_policy(s3, "docs", POLICY, check=False) == ["set the bucket policy of docs"]


def test_policy_bucket_placeholder_is_filled(s3admin, s3) -> None:
    template = POLICY.replace('"Resource": "*"', '"Resource": "arn:aws:s3:::{bucket}/*"')
    wanted = json.loads(template.replace("{bucket}", "bim"))
    s3.stub.add_client_error("get_bucket_policy", "NoSuchBucketPolicy", http_status_code=404)
    assert s3admin.converge_policy(s3, "bim", template, check=True) == ["set the bucket policy of bim"]
    s3.stub.add_response("get_bucket_policy", {"Policy": json.dumps({"Statement": []})}, {"Bucket": "bim"})
    s3.stub.add_response("put_bucket_policy", {}, {"Bucket": "bim", "Policy": json.dumps(wanted)})
    assert s3admin.converge_policy(s3, "bim", template, check=False) == ["set the bucket policy of bim"]
