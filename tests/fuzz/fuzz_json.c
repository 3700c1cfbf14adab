/* fuzz_json.c — libFuzzer target: JSON request bodies of every endpoint that takes one,
 * sent to a running daed (see fuzz_daemon.h) with the key and Content-Type
 * application/json, so the fuzzer spends its time in the JSON scan, cJSON, the v1 image /
 * code / batch readers and the v2 tensor reader, then inference and the answers.
 *
 * Input: one byte choosing the endpoint and model (ENDPOINTS below), one byte seeding the
 * split points of the writes (0: one write; odd: chunked framing), then the body.
 *
 * FUZZ_OPTIONS: -max_len=65536
 */
#include <stdint.h>

#include "fuzz_daemon.h"

static const char *const ENDPOINTS[] = {
    "/v1/denoise",
    "/v1/denoise?model=conv&encoding=pixels",
    "/v1/inpaint?model=conv",
    "/v1/inpaint?model=mlp&encoding=png",
    "/v1/superres?model=sr",
    "/v1/superres?model=sr&resize=1",
    "/v1/encode?model=mlp",
    "/v1/encode?model=conv",
    "/v1/decode?model=mlp",
    "/v1/decode?model=conv",
    "/v1/interpolate?model=mlp",
    "/v1/interpolate?model=conv&steps=3",
    "/v1/score?model=conv",
    "/v1/score?model=conv&heatmap=1&threshold=0.1",
    "/v1/score?model=mlp",
    "/v2/models/mlp/infer",
    "/v2/models/conv/infer",
    "/v2/models/sr/infer",
    "/v1/denoise?model=conv&resize=1",
    "/v1/admin/reload",
};
#define N_ENDPOINTS (sizeof ENDPOINTS / sizeof ENDPOINTS[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *target = ENDPOINTS[data[0] % N_ENDPOINTS];
    /* The reload endpoint only once in a while: it rereads the model folder. */
    if (!strcmp(target, "/v1/admin/reload") && data[0] != N_ENDPOINTS - 1)
        target = ENDPOINTS[0];
    uint32_t seed = data[1];
    fuzz_buf b = {0};
    fb_str(&b, "POST ");
    fb_str(&b, target);
    fb_str(&b, " HTTP/1.1\r\nHost: daed\r\nAuthorization: Bearer " FUZZ_API_KEY
               "\r\nContent-Type: application/json\r\nConnection: close\r\n");
    fb_body(&b, data + 2, size - 2, seed & 1, seed * 2654435761u);
    fuzz_exchange x = {0};
    x.data = (const uint8_t *)b.p;
    x.len = b.n;
    x.split_seed = seed >> 1 ? (seed >> 1) * 2246822519u ^ (uint32_t)size : 0;
    fuzz_exchange_run(&x);
    size_t pos = 0;
    fuzz_answer an;
    int answers = 0;
    while (x.ans && fuzz_answer_next(x.ans, x.ans_len, &pos, 0, &an)) {
        fuzz_answer_check(&an, 0);
        answers++;
    }
    FUZZ_CHECK(answers == 1);
    free(x.ans);
    free(b.p);
    return 0;
}
