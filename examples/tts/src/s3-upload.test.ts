import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { objectUrl, presignGetUrl, regionOf, s3TargetFromEnv, s3TargetFromJob, signRequest, type S3Target } from './s3-upload.ts';

// The worked examples of AWS's "Signature Version 4 for Amazon S3" documentation: their signatures
// were computed by AWS, so matching them checks this signer independently.
const AWS_EXAMPLE: S3Target = {
  endpointUrl: 'https://examplebucket.s3.amazonaws.com',
  bucketName: 'examplebucket',
  accessId: 'AKIAIOSFODNN7EXAMPLE',
  accessSecret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  region: 'us-east-1',
};
const MAY_24_2013 = new Date('2013-05-24T00:00:00Z');

test('PUT signature matches AWS’s worked example', () => {
  const body = 'Welcome to Amazon S3.';
  const headers = signRequest(
    {
      method: 'PUT',
      url: objectUrl(AWS_EXAMPLE, 'test$file.text'),
      headers: { date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY' },
      payloadHash: createHash('sha256').update(body).digest('hex'),
    },
    AWS_EXAMPLE,
    MAY_24_2013,
  );
  assert.match(headers['authorization']!, /SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, /);
  assert.match(headers['authorization']!, /Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd$/);
});

test('presigned GET URL matches AWS’s worked example', () => {
  const url = presignGetUrl(AWS_EXAMPLE, 'test.txt', MAY_24_2013, 86_400);
  assert.equal(new URL(url).searchParams.get('X-Amz-Signature'), 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
  assert.ok(url.startsWith('https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&'));
});

test('path-style URLs for endpoints without the bucket in the host; keys encoded per segment', () => {
  const target = { ...AWS_EXAMPLE, endpointUrl: 'http://127.0.0.1:9000/base/', bucketName: 'audio' };
  assert.equal(objectUrl(target, 'job 1/speech (1).wav').href, 'http://127.0.0.1:9000/base/audio/job%201/speech%20%281%29.wav');
});

test('s3Config and bucket env are read in RunPod’s shape', () => {
  assert.equal(s3TargetFromJob(undefined), undefined);
  assert.throws(() => s3TargetFromJob({ accessId: 'a', endpointUrl: 'http://x' }), /s3Config lacks accessSecret, bucketName/);
  assert.deepEqual(s3TargetFromJob({ accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://s3.eu-west-2.amazonaws.com' }), {
    accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://s3.eu-west-2.amazonaws.com', region: 'eu-west-2',
  });
  const now = new Date('2025-03-05T12:00:00Z');
  assert.equal(s3TargetFromEnv({ BUCKET_ENDPOINT_URL: 'http://x' }, now), undefined);
  const env = { BUCKET_ENDPOINT_URL: 'https://acme.s3.us-west-1.amazonaws.com', BUCKET_ACCESS_KEY_ID: 'k', BUCKET_SECRET_ACCESS_KEY: 's' };
  assert.equal(s3TargetFromEnv(env, now)?.bucketName, '03-25');
  assert.equal(s3TargetFromEnv({ ...env, BUCKET_NAME: 'speech' }, now)?.bucketName, 'speech');
  assert.equal(regionOf('https://acme.s3.us-west-1.amazonaws.com'), 'us-west-1');
  assert.equal(regionOf('http://127.0.0.1:4568'), 'us-east-1');
});
