/*
 * The aws-status endpoint (docs/protocol.md sections 6 and 9): the stage from the Wi-Fi state, the
 * claim and the cloud half, answered from memory at once.
 */
#include "cl_internal.h"

#include <stdlib.h>

void cl_status_view(const cl_device_t *dev, cl_status_view_t *v)
{
    const cl_cloud_t *c = &dev->cloud;
    *v = (cl_status_view_t){.stage = CL_STAGE_IDLE, .ip4_addr = "", .thing_name = "",
                            .certificate_id = "", .failure = CL_FAIL_NONE, .error_code = "",
                            .error_message = ""};
    if (c->thing_name != NULL) {
        v->thing_name = c->thing_name;
    }
    if (c->certificate_id != NULL) {
        v->certificate_id = c->certificate_id;
    }
    switch (dev->wifi) {
    case CL_WIFI_NONE:
        v->stage = dev->claim.data != NULL ? CL_STAGE_CLAIM_RECEIVED : CL_STAGE_IDLE;
        break;
    case CL_WIFI_JOINING:
        v->stage = CL_STAGE_WIFI_CONNECTING;
        break;
    case CL_WIFI_FAILED:
        v->stage = CL_STAGE_FAILED;
        v->failure = dev->wifi_failure;
        break;
    case CL_WIFI_CONNECTED:
        v->ip4_addr = dev->ip4;
        if (c->failure != CL_FAIL_NONE) {
            v->stage = CL_STAGE_FAILED;
            v->failure = c->failure;
            v->status_code = c->status_code;
            v->error_code = c->error_code != NULL ? c->error_code : "";
            v->error_message = c->error_message != NULL ? c->error_message : "";
        } else if (c->state != CL_CLOUD_OFF && c->stage > CL_STAGE_WIFI_CONNECTED) {
            v->stage = c->stage;
        } else {
            v->stage = CL_STAGE_WIFI_CONNECTED;
        }
        break;
    }
}

int cl_status_pack(const cl_status_view_t *v, uint8_t **out, size_t *out_len)
{
    AwsStatusPayload answer = AWS_STATUS_PAYLOAD__INIT;
    RespGetCloudStatus resp = RESP_GET_CLOUD_STATUS__INIT;
    CloudFailure failure = CLOUD_FAILURE__INIT;
    /* protobuf-c's string fields are not const; packing only reads them. */
    resp.stage = (CloudStage)v->stage;
    resp.ip4_addr = (char *)v->ip4_addr;
    resp.thing_name = (char *)v->thing_name;
    resp.certificate_id = (char *)v->certificate_id;
    if (v->stage == CL_STAGE_FAILED) {
        failure.kind = (CloudFailureKind)v->failure;
        failure.status_code = v->status_code;
        failure.error_code = (char *)v->error_code;
        failure.error_message = (char *)v->error_message;
        resp.failure = &failure;
    }
    answer.msg = AWS_STATUS_MSG_TYPE__TypeRespGetCloudStatus;
    answer.status = STATUS__Success;
    answer.payload_case = AWS_STATUS_PAYLOAD__PAYLOAD_RESP_GET;
    answer.resp_get = &resp;
    size_t n = aws_status_payload__get_packed_size(&answer);
    *out = malloc(n);
    if (*out == NULL) {
        return -1;
    }
    *out_len = aws_status_payload__pack(&answer, *out);
    return 0;
}

int cl_status_handle(cl_device_t *dev, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    AwsStatusPayload *req = aws_status_payload__unpack(&cl_pb_allocator, in_len, in);
    if (req == NULL) {
        cl_log(dev, CL_LOG_WARN, "aws-status: a request that does not decode");
        return -1;
    }
    /* CmdGetCloudStatus is the one request: its payload, or msg 0 without a payload. */
    bool wants_status = req->payload_case == AWS_STATUS_PAYLOAD__PAYLOAD_CMD_GET
                        || (req->payload_case == AWS_STATUS_PAYLOAD__PAYLOAD__NOT_SET
                            && req->msg == AWS_STATUS_MSG_TYPE__TypeCmdGetCloudStatus);
    aws_status_payload__free_unpacked(req, &cl_pb_allocator);
    if (!wants_status) {
        cl_log(dev, CL_LOG_WARN, "aws-status: unexpected message");
        return -1;
    }
    cl_status_view_t view;
    cl_status_view(dev, &view);
    return cl_status_pack(&view, out, out_len);
}

cl_stage_t cl_stage(const cl_device_t *dev)
{
    cl_status_view_t view;
    cl_status_view(dev, &view);
    return view.stage;
}
