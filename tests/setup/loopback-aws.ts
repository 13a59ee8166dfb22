/**
 * Every test process talks to loopback only. The AWS SDK's defaults would not: a server built
 * without a local STS or S3 endpoint would call AWS, and the default credential chain ends at
 * the instance metadata service. Point every SDK client without an explicit endpoint at a closed
 * loopback port, give the default chain static dummy keys, and turn the metadata lookup off.
 * Tests that need STS or S3 pass their local server's endpoint explicitly, which wins.
 */
const closedLoopbackPort = 'http://127.0.0.1:9';

process.env.AWS_ENDPOINT_URL = closedLoopbackPort;
process.env.AWS_ENDPOINT_URL_STS = closedLoopbackPort;
process.env.AWS_ENDPOINT_URL_S3 = closedLoopbackPort;
process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.AWS_CONFIG_FILE = '/dev/null';
process.env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
process.env.AWS_ACCESS_KEY_ID ??= 'AKIDLOOPBACKTESTS00';
process.env.AWS_SECRET_ACCESS_KEY ??= 'loopback-tests-only';
// Cove runs on Node 20; the SDK's notice that its 2027 releases need Node 22 is for operators
// (the server logs it once), not for every test worker.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
