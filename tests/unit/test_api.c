/* test_api.c — the API format layer (src/api): tables of bad Anthropic and OpenAI bodies
 * against the exact 400 messages documented in docs/api.md; good bodies from the contract
 * (../shared/spec/anthropic-messages.md) and a Claude-Code-like body; the fallback prompt
 * compared with strings written out by hand from the documented format; the response and
 * SSE builders parsed back with jansson; and count_tokens on stories260K compared with the
 * tokenizer run on the rendered prompt. JSON bodies are written with ' for " (see J()). */
#include "pv_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/pv_api.h"
#include "tokenizer/pv_tokenizer.h"
#include "weights/pv_weights.h"

/* Parses a JSON text written with single quotes (no ' inside strings in these tests). */
static json_t *J(const char *text) {
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t je;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &je);
    if (!v) fail_msg("bad test JSON (%s): %s", je.text, s);
    free(s);
    return v;
}

#define USER_HI "'messages':[{'role':'user','content':'hi'}]"
#define BASE "'model':'m','max_tokens':10,"

typedef struct {
    const char *body;
    bool count_tokens;
    const char *message;
} bad_case;

static const bad_case anthropic_bad[] = {
    {"[]", false, "request body must be a JSON object"},
    {"{'max_tokens':10," USER_HI "}", false, "model: field required"},
    {"{'model':5,'max_tokens':10," USER_HI "}", false, "model: must be a string"},
    {"{'model':'','max_tokens':10," USER_HI "}", false, "model: must not be empty"},
    {"{'model':'m'," USER_HI "}", false, "max_tokens: field required"},
    {"{'model':'m','max_tokens':'10'," USER_HI "}", false, "max_tokens: must be an integer >= 0"},
    {"{'model':'m','max_tokens':-1," USER_HI "}", false, "max_tokens: must be an integer >= 0"},
    {"{'model':'m','max_tokens':1.5," USER_HI "}", false, "max_tokens: must be an integer >= 0"},
    {"{'model':'m','max_tokens':10}", false, "messages: field required"},
    {"{" BASE "'messages':{}}", false, "messages: must be an array"},
    {"{" BASE "'messages':[]}", false, "messages: at least one message is required"},
    {"{" BASE "'messages':['hi']}", false, "messages.0: must be an object"},
    {"{" BASE "'messages':[{'content':'hi'}]}", false, "messages.0.role: field required"},
    {"{" BASE "'messages':[{'role':'bot','content':'hi'}]}", false,
     "messages.0.role: unknown role \"bot\" (expected \"user\", \"assistant\" or \"system\")"},
    {"{" BASE "'messages':[{'role':'user'}]}", false, "messages.0.content: field required"},
    {"{" BASE "'messages':[{'role':'user','content':5}]}", false,
     "messages.0.content: must be a string or an array of content blocks"},
    {"{" BASE "'messages':[{'role':'user','content':'a'},{'role':'assistant','content':'b'},"
     "{'role':'user','content':[{'type':'foo'}]}]}",
     false, "messages.2.content.0.type: unknown block type \"foo\""},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'text','text':'a'},7]}]}", false,
     "messages.0.content.1: must be an object"},
    {"{" BASE "'messages':[{'role':'user','content':[{'text':'a'}]}]}", false,
     "messages.0.content.0.type: field required"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'text'}]}]}", false,
     "messages.0.content.0.text: field required"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'text','text':3}]}]}", false,
     "messages.0.content.0.text: must be a string"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'tool_use','id':'t','name':'n',"
     "'input':{}}]}]}",
     false, "messages.0.content.0.type: tool_use blocks are only allowed in assistant messages"},
    {"{" BASE "'messages':[{'role':'user','content':'a'},{'role':'assistant','content':"
     "[{'type':'tool_use','id':'t','name':'n'}]}]}",
     false, "messages.1.content.0.input: field required"},
    {"{" BASE "'messages':[{'role':'user','content':'a'},{'role':'assistant','content':"
     "[{'type':'tool_use','id':'t','name':'n','input':'x'}]}]}",
     false, "messages.1.content.0.input: must be an object"},
    {"{" BASE "'messages':[{'role':'user','content':'a'},{'role':'assistant','content':"
     "[{'type':'tool_use','name':'n','input':{}}]}]}",
     false, "messages.1.content.0.id: field required"},
    {"{" BASE "'messages':[{'role':'assistant','content':[{'type':'tool_result',"
     "'tool_use_id':'t'}]}]}",
     false, "messages.0.content.0.type: tool_result blocks are only allowed in user messages"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'t',"
     "'content':5}]}]}",
     false, "messages.0.content.0.content: must be a string or an array of content blocks"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'t',"
     "'content':[{'type':'tool_use','id':'x','name':'y','input':{}}]}]}]}",
     false,
     "messages.0.content.0.content.0.type: tool_use blocks are not allowed inside tool_result "
     "content"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'t',"
     "'content':[{'type':'text'}]}]}]}",
     false, "messages.0.content.0.content.0.text: field required"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'t',"
     "'is_error':'yes'}]}]}",
     false, "messages.0.content.0.is_error: must be a boolean"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'tool_result'}]}]}", false,
     "messages.0.content.0.tool_use_id: field required"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'ftp'}}]}]}",
     false, "messages.0.content.0.source.type: unknown source type \"ftp\""},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'base64',"
     "'media_type':'image/png'}}]}]}",
     false, "messages.0.content.0.source.data: field required"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'image'}]}]}", false,
     "messages.0.content.0.source: field required"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'document','source':5}]}]}", false,
     "messages.0.content.0.source: must be an object"},
    {"{" BASE "'messages':[{'role':'user','content':[{'type':'thinking','thinking':'x'}]}]}",
     false, "messages.0.content.0.type: thinking blocks are only allowed in assistant messages"},
    {"{" BASE "'messages':[{'role':'user','content':'a'},{'role':'assistant','content':"
     "[{'type':'redacted_thinking'}]}]}",
     false, "messages.1.content.0.data: field required"},
    {"{" BASE "'messages':[{'role':'system','content':[{'type':'image','source':{'type':'url',"
     "'url':'u'}}]}]}",
     false, "messages.0.content.0.type: image blocks are not allowed in system messages"},
    {"{" BASE "'system':5," USER_HI "}", false,
     "system: must be a string or an array of text blocks"},
    {"{" BASE "'system':[{'type':'image'}]," USER_HI "}", false,
     "system.0.type: must be \"text\" (got \"image\")"},
    {"{" BASE "'system':[{'type':'text','text':'a'},{'type':'text'}]," USER_HI "}", false,
     "system.1.text: field required"},
    {"{" BASE "'temperature':1.5," USER_HI "}", false,
     "temperature: must be a number between 0 and 1"},
    {"{" BASE "'temperature':'hot'," USER_HI "}", false,
     "temperature: must be a number between 0 and 1"},
    {"{" BASE "'top_p':2," USER_HI "}", false, "top_p: must be a number between 0 and 1"},
    {"{" BASE "'top_k':-1," USER_HI "}", false, "top_k: must be an integer >= 0"},
    {"{" BASE "'stop_sequences':'END'," USER_HI "}", false,
     "stop_sequences: must be an array of strings"},
    {"{" BASE "'stop_sequences':['a',1]," USER_HI "}", false, "stop_sequences.1: must be a string"},
    {"{" BASE "'stream':'yes'," USER_HI "}", false, "stream: must be a boolean"},
    {"{" BASE "'tools':{}," USER_HI "}", false, "tools: must be an array"},
    {"{" BASE "'tools':[5]," USER_HI "}", false, "tools.0: must be an object"},
    {"{" BASE "'tools':[{'description':'x','input_schema':{}}]," USER_HI "}", false,
     "tools.0.name: field required"},
    {"{" BASE "'tools':[{'name':'a'}]," USER_HI "}", false, "tools.0.input_schema: field required"},
    {"{" BASE "'tools':[{'name':'a','input_schema':[]}]," USER_HI "}", false,
     "tools.0.input_schema: must be an object"},
    {"{" BASE "'tools':[{'name':'a','input_schema':{}},{'name':'a','input_schema':{}}]," USER_HI
     "}",
     false, "tools.1.name: duplicate tool name \"a\""},
    {"{" BASE "'tool_choice':'auto'," USER_HI "}", false, "tool_choice: must be an object"},
    {"{" BASE "'tool_choice':{'type':'sometimes'}," USER_HI "}", false,
     "tool_choice.type: must be one of \"auto\", \"any\", \"tool\", \"none\" (got \"sometimes\")"},
    {"{" BASE "'tools':[{'name':'a','input_schema':{}}],'tool_choice':{'type':'tool'}," USER_HI
     "}",
     false, "tool_choice.name: field required"},
    {"{" BASE "'tools':[{'name':'a','input_schema':{}}],'tool_choice':{'type':'tool','name':'zz'},"
     USER_HI "}",
     false, "tool_choice.name: no tool named \"zz\" in tools"},
    {"{" BASE "'tool_choice':{'type':'any'}," USER_HI "}", false,
     "tool_choice: type \"any\" requires tools"},
    {"{" BASE "'tool_choice':{'type':'auto','disable_parallel_tool_use':1}," USER_HI "}", false,
     "tool_choice.disable_parallel_tool_use: must be a boolean"},
    {"{" BASE "'thinking':{'type':'enabled'}," USER_HI "}", false,
     "thinking.budget_tokens: field required"},
    {"{" BASE "'thinking':{'type':'enabled','budget_tokens':0}," USER_HI "}", false,
     "thinking.budget_tokens: must be an integer >= 1"},
    {"{" BASE "'thinking':'on'," USER_HI "}", false, "thinking: must be an object"},
    {"{" BASE "'thinking':{}," USER_HI "}", false, "thinking.type: field required"},
    {"{" BASE "'metadata':'x'," USER_HI "}", false, "metadata: must be an object"},
    {"{" BASE "'metadata':{'user_id':5}," USER_HI "}", false, "metadata.user_id: must be a string"},
    {"{'model':'m'}", true, "messages: field required"},
    {"{'messages':[{'role':'user','content':'hi'}]}", true, "model: field required"},
};

static void test_anthropic_bad_bodies(void **state) {
    (void)state;
    for (size_t i = 0; i < PV_ARRAY_LEN(anthropic_bad); i++) {
        json_t *body = J(anthropic_bad[i].body);
        pv_request *r = (pv_request *)0x1;
        pv_api_error err;
        memset(&err, 0, sizeof err);
        pv_status st = pv_api_anthropic_parse(body, anthropic_bad[i].count_tokens, &r, &err);
        json_decref(body);
        if (st == PV_OK || strcmp(err.message, anthropic_bad[i].message) != 0)
            fail_msg("case %zu %s\n  want: %s\n  got:  %s (status %d)", i, anthropic_bad[i].body,
                     anthropic_bad[i].message, st == PV_OK ? "(accepted)" : err.message, st);
        assert_null(r);
        assert_int_equal(err.kind, PV_API_ERR_INVALID_REQUEST);
        assert_int_equal(pv_api_error_http_status(PV_API_ANTHROPIC, err.kind), 400);
        /* The message starts with the param when there is one. */
        if (err.param[0]) assert_int_equal(strncmp(err.message, err.param, strlen(err.param)), 0);
    }
}

typedef struct {
    const char *body;
    const char *message;
    const char *param;
} oa_bad_case;

#define OA_HI "'messages':[{'role':'user','content':'hi'}]"
static const oa_bad_case openai_bad[] = {
    {"{" OA_HI "}", "model: field required", "model"},
    {"{'model':'m','messages':[]}", "messages: at least one message is required", "messages"},
    {"{'model':'m'}", "messages: field required", "messages"},
    {"{'model':'m','messages':[{'role':'function','content':'x'}]}",
     "messages[0].role: unknown role \"function\" (expected \"system\", \"developer\", \"user\", "
     "\"assistant\" or \"tool\")",
     "messages[0].role"},
    {"{'model':'m','messages':[{'role':'user'}]}", "messages[0].content: field required",
     "messages[0].content"},
    {"{'model':'m','messages':[{'role':'user','content':5}]}",
     "messages[0].content: must be a string or an array of content parts", "messages[0].content"},
    {"{'model':'m','messages':[{'role':'user','content':[{'type':'video'}]}]}",
     "messages[0].content[0].type: unknown content part type \"video\"",
     "messages[0].content[0].type"},
    {"{'model':'m','messages':[{'role':'user','content':[{'type':'text'}]}]}",
     "messages[0].content[0].text: field required", "messages[0].content[0].text"},
    {"{'model':'m','messages':[{'role':'system','content':[{'type':'image_url','image_url':"
     "{'url':'u'}}]}]}",
     "messages[0].content[0].type: image_url parts are not allowed in this message",
     "messages[0].content[0].type"},
    {"{'model':'m','temperature':3," OA_HI "}", "temperature: must be a number between 0 and 2",
     "temperature"},
    {"{'model':'m','max_tokens':0," OA_HI "}", "max_tokens: must be an integer >= 1",
     "max_tokens"},
    {"{'model':'m','max_completion_tokens':'x'," OA_HI "}",
     "max_completion_tokens: must be an integer >= 1", "max_completion_tokens"},
    {"{'model':'m','stop':5," OA_HI "}", "stop: must be a string or an array of strings", "stop"},
    {"{'model':'m','stop':['a',2]," OA_HI "}", "stop[1]: must be a string", "stop[1]"},
    {"{'model':'m','n':2," OA_HI "}", "n: only n = 1 is supported", "n"},
    {"{'model':'m','seed':'x'," OA_HI "}", "seed: must be an integer", "seed"},
    {"{'model':'m','presence_penalty':3," OA_HI "}",
     "presence_penalty: must be a number between -2 and 2", "presence_penalty"},
    {"{'model':'m','messages':[{'role':'user','content':'a'},{'role':'assistant','content':null,"
     "'tool_calls':[{'id':'c1','type':'function','function':{'name':'f'}}]}]}",
     "messages[1].tool_calls[0].function.arguments: field required",
     "messages[1].tool_calls[0].function.arguments"},
    {"{'model':'m','messages':[{'role':'user','content':'a'},{'role':'assistant','content':null,"
     "'tool_calls':[{'id':'c1','type':'function'}]}]}",
     "messages[1].tool_calls[0].function: field required", "messages[1].tool_calls[0].function"},
    {"{'model':'m','messages':[{'role':'user','content':'a'},{'role':'tool','content':'r'}]}",
     "messages[1].tool_call_id: field required", "messages[1].tool_call_id"},
    {"{'model':'m','tool_choice':'sometimes'," OA_HI "}",
     "tool_choice: must be \"none\", \"auto\", \"required\" or "
     "{\"type\":\"function\",\"function\":{\"name\":...}}",
     "tool_choice"},
    {"{'model':'m','tools':[{'type':'function','function':{'name':'f'}}],'tool_choice':"
     "{'type':'function','function':{'name':'zz'}}," OA_HI "}",
     "tool_choice.function.name: no tool named \"zz\" in tools", "tool_choice.function.name"},
    {"{'model':'m','tools':[{'type':'retrieval'}]," OA_HI "}",
     "tools[0].type: must be \"function\"",
     "tools[0].type"},
    {"{'model':'m','tools':[{'type':'function','function':{'name':'f','parameters':5}}]," OA_HI
     "}",
     "tools[0].function.parameters: must be an object", "tools[0].function.parameters"},
    {"{'model':'m','stream_options':{'include_usage':'y'}," OA_HI "}",
     "stream_options.include_usage: must be a boolean", "stream_options.include_usage"},
    {"{'model':'m','response_format':{'type':'xml'}," OA_HI "}",
     "response_format.type: must be \"text\", \"json_object\" or \"json_schema\"",
     "response_format.type"},
};

static void test_openai_bad_bodies(void **state) {
    (void)state;
    for (size_t i = 0; i < PV_ARRAY_LEN(openai_bad); i++) {
        json_t *body = J(openai_bad[i].body);
        pv_request *r = NULL;
        pv_api_error err;
        memset(&err, 0, sizeof err);
        pv_status st = pv_api_openai_parse(body, &r, &err);
        json_decref(body);
        if (st == PV_OK || strcmp(err.message, openai_bad[i].message) != 0 ||
            strcmp(err.param, openai_bad[i].param) != 0)
            fail_msg("case %zu %s\n  want: %s [%s]\n  got:  %s [%s]", i, openai_bad[i].body,
                     openai_bad[i].message, openai_bad[i].param,
                     st == PV_OK ? "(accepted)" : err.message, err.param);
        assert_null(r);
        /* The OpenAI error body carries the param. */
        char *js = pv_api_error_json(PV_API_OPENAI, &err, NULL);
        json_t *o = json_loads(js, 0, NULL);
        assert_non_null(o);
        json_t *e = json_object_get(o, "error");
        assert_string_equal(json_string_value(json_object_get(e, "param")), openai_bad[i].param);
        assert_string_equal(json_string_value(json_object_get(e, "message")),
                            openai_bad[i].message);
        assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
        assert_true(json_is_null(json_object_get(e, "code")));
        json_decref(o);
        free(js);
    }
}

static pv_request *parse_ok(const char *text, bool ct) {
    json_t *body = J(text);
    pv_request *r = NULL;
    pv_api_error err;
    if (pv_api_anthropic_parse(body, ct, &r, &err) != PV_OK) fail_msg("rejected: %s", err.message);
    json_decref(body);
    assert_non_null(r);
    return r;
}

/* The stories260K tokenizer (no chat template: the ChatML fallback) shared by the tests. */
static pv_weights *g_stories_w;
static pv_tokenizer *g_stories_tok;
static pv_api_chat *g_fallback;

static int setup_chat(void **state) {
    (void)state;
    char *path = pv_test_data_path("models/stories260K.gguf");
    pv_error err;
    if (pv_weights_open(path, &g_stories_w, &err) != PV_OK) fail_msg("open: %s", err.msg);
    if (pv_tokenizer_init(g_stories_w, &g_stories_tok, &err) != PV_OK) fail_msg("tok: %s", err.msg);
    if (pv_api_chat_init(NULL, g_stories_tok, &g_fallback, &err) != PV_OK) fail_msg("chat: %s", err.msg);
    free(path);
    return 0;
}

static int teardown_chat(void **state) {
    (void)state;
    pv_api_chat_free(g_fallback);
    pv_tokenizer_free(g_stories_tok);
    pv_weights_free(g_stories_w);
    return 0;
}

/* The fallback (ChatML) rendering of r. */
static char *render(const pv_request *r) {
    char *text;
    size_t len;
    pv_api_error e;
    if (pv_api_chat_render(g_fallback, r, &text, &len, &e) != PV_OK) fail_msg("render: %s", e.message);
    assert_int_equal(strlen(text), len);
    return text;
}

/* Asserts that r's template context equals the hand-written `expected` (quotes as '). */
static void assert_context(const pv_request *r, const char *expected) {
    json_t *ctx = pv_api_chat_context(g_fallback, r);
    json_t *want = J(expected);
    if (!json_equal(ctx, want)) {
        char *a = json_dumps(ctx, JSON_INDENT(1)), *b = json_dumps(want, JSON_INDENT(1));
        fail_msg("context\n%s\n!= expected\n%s", a, b);
    }
    json_decref(ctx);
    json_decref(want);
}

static void test_anthropic_contract_body(void **state) {
    (void)state;
    pv_request *r = parse_ok(
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'system':'Be brief.',"
        "'messages':[{'role':'user','content':'Hi'},{'role':'assistant','content':'Hello'},"
        "{'role':'user','content':[{'type':'text','text':'Tell a story','cache_control':"
        "{'type':'ephemeral'}}]}],'temperature':0.5,'top_p':0.9,'top_k':40,"
        "'stop_sequences':['END','\\n\\n'],'stream':true,'service_tier':'auto','container':null,"
        "'unknown_field':{'x':1}}",
        false);
    assert_string_equal(r->model, "claude-sonnet-4-5");
    assert_int_equal(r->family, PV_API_ANTHROPIC);
    assert_true(r->has_max_tokens);
    assert_int_equal(r->max_tokens, 1024);
    assert_true(r->has_temperature && r->temperature == 0.5);
    assert_true(r->has_top_p && r->top_p == 0.9);
    assert_true(r->has_top_k && r->top_k == 40);
    assert_false(r->has_seed);
    assert_int_equal(r->n_stop, 2);
    assert_string_equal(r->stop[0], "END");
    assert_string_equal(r->stop[1], "\n\n");
    assert_true(r->stream);
    assert_string_equal(r->system, "Be brief.");
    assert_int_equal(r->n_messages, 3);
    assert_false(r->prefill);
    assert_int_equal(r->messages[2].role, PV_API_ROLE_USER);
    assert_string_equal(r->messages[2].blocks[0].text, "Tell a story");
    assert_false(pv_api_request_has_media(r));
    pv_api_error err;
    assert_int_equal(pv_api_request_check_text_only(r, &err), PV_OK);

    /* The template context (docs/chat.md) and the ChatML fallback, written out by hand. */
    assert_context(r, "{'messages':[{'role':'system','content':'Be brief.'},"
                      "{'role':'user','content':'Hi'},{'role':'assistant','content':'Hello'},"
                      "{'role':'user','content':'Tell a story'}],'add_generation_prompt':true,"
                      "'bos_token':'<s>','eos_token':'</s>','enable_thinking':false}");
    char *chatml = render(r);
    assert_string_equal(chatml, "<|im_start|>system\nBe brief.<|im_end|>\n"
                                "<|im_start|>user\nHi<|im_end|>\n"
                                "<|im_start|>assistant\nHello<|im_end|>\n"
                                "<|im_start|>user\nTell a story<|im_end|>\n"
                                "<|im_start|>assistant\n");
    char *again = render(r);
    assert_string_equal(chatml, again); /* deterministic */
    free(chatml);
    free(again);
    pv_request_free(r);

    /* Minimal tolerated forms: max_tokens 0 (cache warm-up), null optional fields, count_tokens
     * without max_tokens (and with one, ignored). */
    r = parse_ok("{'model':'m','max_tokens':0,'temperature':null,'system':null," USER_HI "}",
                 false);
    assert_int_equal(r->max_tokens, 0);
    assert_false(r->has_temperature);
    assert_null(r->system);
    pv_request_free(r);
    r = parse_ok("{'model':'m'," USER_HI "}", true);
    assert_false(r->has_max_tokens);
    pv_request_free(r);
    r = parse_ok("{'model':'m','max_tokens':'junk'," USER_HI "}", true);
    pv_request_free(r);
}

static void test_merge_prefill_tools(void **state) {
    (void)state;
    pv_request *r = parse_ok(
        "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'a'},"
        "{'role':'user','content':[{'type':'text','text':'b'}]},"
        "{'role':'assistant','content':[{'type':'thinking','thinking':'hmm','signature':'s'},"
        "{'type':'tool_use','id':'t1','name':'Read','input':{'b':2,'a':1}}]},"
        "{'role':'user','content':[{'type':'tool_result','tool_use_id':'t1','is_error':true,"
        "'content':[{'type':'text','text':'boom'}]}]},"
        "{'role':'assistant','content':'Once upon'}],"
        "'tools':[{'name':'Read','description':'Reads','input_schema':{'type':'object'}}],"
        "'tool_choice':{'type':'tool','name':'Read','disable_parallel_tool_use':true}}",
        false);
    assert_int_equal(r->n_messages, 4); /* the two user turns merged */
    assert_int_equal(r->messages[0].n_blocks, 2);
    assert_true(r->prefill);
    assert_int_equal(r->tool_choice, PV_API_TOOL_CHOICE_TOOL);
    assert_string_equal(r->tool_choice_name, "Read");
    assert_true(r->disable_parallel_tool_use);
    assert_int_equal(r->n_tools, 1);
    assert_string_equal(r->tools[0].name, "Read");
    assert_string_equal(r->tools[0].description, "Reads");
    assert_true(json_is_object(r->tools[0].input_schema));
    const pv_api_block *tu = &r->messages[1].blocks[1];
    assert_int_equal(tu->type, PV_API_BLOCK_TOOL_USE);
    assert_int_equal(json_integer_value(json_object_get(tu->input, "a")), 1);
    const pv_api_block *tr = &r->messages[2].blocks[0];
    assert_int_equal(tr->type, PV_API_BLOCK_TOOL_RESULT);
    assert_true(tr->is_error);
    assert_string_equal(tr->id, "t1");
    assert_int_equal(tr->n_content, 1);
    /* tool_use → tool_calls with arguments as an object (client key order kept), the error
     * result → a "tool" message with "Error: ", thinking dropped, the prefill left open */
    assert_context(r, "{'messages':[{'role':'user','content':'a\\nb'},"
                      "{'role':'assistant','content':'','tool_calls':[{'id':'t1','type':'function',"
                      "'function':{'name':'Read','arguments':{'b':2,'a':1}}}]},"
                      "{'role':'tool','tool_call_id':'t1','name':'Read','content':'Error: boom'},"
                      "{'role':'assistant','content':'Once upon'}],"
                      "'tools':[{'type':'function','function':{'name':'Read','description':'Reads',"
                      "'parameters':{'type':'object'}}}],'add_generation_prompt':false,"
                      "'bos_token':'<s>','eos_token':'</s>','enable_thinking':false}");
    char *plain = render(r);
    assert_non_null(strstr(plain, "<tools>\n{\"type\": \"function\", \"function\": {\"name\": "
                                  "\"Read\", \"description\": \"Reads\", \"parameters\": "
                                  "{\"type\": \"object\"}}}\n</tools>"));
    assert_non_null(strstr(plain, "<|im_start|>assistant\n<tool_call>\n{\"name\": \"Read\", "
                                  "\"arguments\": {\"b\": 2, \"a\": 1}}\n</tool_call><|im_end|>\n"
                                  "<|im_start|>user\n<tool_response>\nError: boom\n"
                                  "</tool_response><|im_end|>\n"));
    const char *end = "<|im_start|>assistant\nOnce upon"; /* continued, not closed */
    assert_string_equal(plain + strlen(plain) - strlen(end), end);
    free(plain);
    pv_request_free(r);
}

/* What Claude Code sends (see ../shared/spec/oracles.md), shortened. */
static const char claude_code_body[] =
    "{'model':'claude-opus-4-5','max_tokens':128000,'stream':true,"
    "'system':[{'type':'text','text':'x-anthropic-billing-header: cc_version=2.0.1; cch=abc123;'},"
    "{'type':'text','text':'You are Claude Code.','cache_control':{'type':'ephemeral'}},"
    "{'type':'text','text':'Be concise.','cache_control':{'type':'ephemeral','ttl':'1h'}}],"
    "'messages':[{'role':'user','content':[{'type':'text','text':'say hi'}]},"
    "{'role':'system','content':''},"
    "{'role':'system','content':'Reminder: todo list is empty.'}],"
    "'thinking':{'type':'adaptive'},'output_config':{'effort':'high'},"
    "'context_management':{'edits':[{'type':'clear_thinking_20251015','keep':'all'}]},"
    "'metadata':{'user_id':'user_abc_account__session_1'},"
    "'tools':[{'name':'Bash','description':'Runs a command','input_schema':{'type':'object',"
    "'properties':{'command':{'type':'string'}},'required':['command']}},"
    "{'name':'Read','description':'Reads a file','input_schema':{'type':'object'},"
    "'cache_control':{'type':'ephemeral'}},"
    "{'type':'web_search_20250305','name':'web_search','max_uses':5}]}";

static void test_claude_code_body(void **state) {
    (void)state;
    pv_request *r = parse_ok(claude_code_body, false);
    assert_string_equal(r->model, "claude-opus-4-5");
    assert_int_equal(r->max_tokens, 128000);
    assert_int_equal(r->thinking, PV_API_THINKING_ADAPTIVE);
    assert_string_equal(r->system, "You are Claude Code.\nBe concise.");
    assert_int_equal(r->n_tools, 3);
    assert_null(r->tools[2].input_schema);
    assert_string_equal(r->tools[2].type, "web_search_20250305");
    /* user, then the two system messages merged into one in place */
    assert_int_equal(r->n_messages, 2);
    assert_int_equal(r->messages[1].role, PV_API_ROLE_SYSTEM);
    assert_false(r->prefill);
    /* the billing header is dropped, the in-conversation system turn folded into the one
     * system message, the server tool (no schema) left out of the tools */
    assert_context(r, "{'messages':[{'role':'system','content':'You are Claude Code.\\nBe concise."
                      "\\n\\nReminder: todo list is empty.'},{'role':'user','content':'say hi'}],"
                      "'tools':[{'type':'function','function':{'name':'Bash','description':"
                      "'Runs a command','parameters':{'type':'object','properties':{'command':"
                      "{'type':'string'}},'required':['command']}}},{'type':'function','function':"
                      "{'name':'Read','description':'Reads a file','parameters':{'type':'object'}}}],"
                      "'add_generation_prompt':true,'bos_token':'<s>','eos_token':'</s>',"
                      "'enable_thinking':true}");
    char *plain = render(r);
    assert_null(strstr(plain, "x-anthropic-billing-header"));
    assert_null(strstr(plain, "cch=abc123"));
    assert_null(strstr(plain, "web_search"));
    pv_request_free(r);

    /* A different billing header gives the same prompt (prefix stability). */
    char *other = strdup(claude_code_body);
    char *p = strstr(other, "abc123");
    memcpy(p, "zzz999", 6);
    pv_request *r2 = parse_ok(other, false);
    char *plain2 = render(r2);
    assert_string_equal(plain, plain2);
    free(plain2);
    pv_request_free(r2);
    free(other);
    free(plain);
}

static void test_media_rejected_text_only(void **state) {
    (void)state;
    pv_request *r = parse_ok(
        "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':[{'type':'text',"
        "'text':'look'},{'type':'image','source':{'type':'base64','media_type':'image/png',"
        "'data':'AAAA'}}]}]}",
        false);
    assert_true(pv_api_request_has_media(r));
    pv_api_error err;
    assert_int_not_equal(pv_api_request_check_text_only(r, &err), PV_OK);
    assert_string_equal(err.message, "messages.0.content.1: image blocks are not supported: this "
                                     "model takes no images or documents (text-only)");
    assert_int_equal(pv_api_error_http_status(PV_API_ANTHROPIC, err.kind), 400);
    pv_request_free(r);
    /* a document inside a tool_result */
    r = parse_ok("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':[{'type':"
                 "'tool_result','tool_use_id':'t','content':[{'type':'document','source':{'type':"
                 "'text','media_type':'text/plain','data':'x'}}]}]}]}",
                 false);
    assert_int_not_equal(pv_api_request_check_text_only(r, &err), PV_OK);
    assert_string_equal(err.message, "messages.0.content.0.content.0: document blocks are not "
                                     "supported: this model takes no images or documents "
                                     "(text-only)");
    pv_request_free(r);
}

static void test_openai_good(void **state) {
    (void)state;
    json_t *body = J(
        "{'model':'gpt-4o','messages':[{'role':'system','content':'Be brief.'},"
        "{'role':'user','content':[{'type':'text','text':'a'}]},"
        "{'role':'assistant','content':null,'tool_calls':[{'id':'c1','type':'function',"
        "'function':{'name':'f','arguments':'{\\'x\\':1}'}}]},"
        "{'role':'tool','tool_call_id':'c1','content':'42'},"
        "{'role':'developer','content':'later'}],"
        "'max_tokens':7,'max_completion_tokens':9,'temperature':1.5,'stop':'END','seed':-3,"
        "'stream':true,'stream_options':{'include_usage':true},'parallel_tool_calls':false,"
        "'tools':[{'type':'function','function':{'name':'f','parameters':{'type':'object'}}}],"
        "'tool_choice':'required','response_format':{'type':'json_object'},'logprobs':false}");
    pv_request *r = NULL;
    pv_api_error err;
    if (pv_api_openai_parse(body, &r, &err) != PV_OK) fail_msg("rejected: %s", err.message);
    json_decref(body);
    assert_int_equal(r->family, PV_API_OPENAI);
    assert_string_equal(r->system, "Be brief.");
    assert_int_equal(r->max_tokens, 9);
    assert_true(r->has_temperature && r->temperature == 1.5);
    assert_int_equal(r->n_stop, 1);
    assert_string_equal(r->stop[0], "END");
    assert_true(r->has_seed);
    assert_true(r->seed == (uint64_t)(int64_t)-3);
    assert_true(r->stream && r->stream_include_usage && r->disable_parallel_tool_use);
    assert_int_equal(r->tool_choice, PV_API_TOOL_CHOICE_ANY);
    assert_string_equal(json_string_value(json_object_get(r->response_format, "type")),
                        "json_object");
    assert_int_equal(r->n_messages, 4); /* user, assistant, user(tool_result), system */
    assert_int_equal(r->messages[1].blocks[0].type, PV_API_BLOCK_TOOL_USE);
    assert_int_equal(json_integer_value(json_object_get(r->messages[1].blocks[0].input, "x")), 1);
    assert_int_equal(r->messages[2].role, PV_API_ROLE_USER);
    assert_int_equal(r->messages[2].blocks[0].type, PV_API_BLOCK_TOOL_RESULT);
    assert_string_equal(r->messages[2].blocks[0].content[0].text, "42");
    assert_int_equal(r->messages[3].role, PV_API_ROLE_SYSTEM);
    /* OpenAI maps to the same template context as Anthropic: developer → system (folded),
     * tool_calls with arguments as an object, the tool message with its tool's name */
    assert_context(r, "{'messages':[{'role':'system','content':'Be brief.\\n\\nlater'},"
                      "{'role':'user','content':'a'},{'role':'assistant','content':'',"
                      "'tool_calls':[{'id':'c1','type':'function','function':{'name':'f',"
                      "'arguments':{'x':1}}}]},{'role':'tool','tool_call_id':'c1','name':'f',"
                      "'content':'42'}],'tools':[{'type':'function','function':{'name':'f',"
                      "'parameters':{'type':'object'}}}],'add_generation_prompt':true,"
                      "'bos_token':'<s>','eos_token':'</s>','enable_thinking':false}");
    pv_request_free(r);

    /* The same conversation in both APIs renders to the same prompt. */
    json_t *oa = J("{'model':'m','messages':[{'role':'system','content':'S'},"
                   "{'role':'user','content':'Hi'},{'role':'assistant','content':'Yo'},"
                   "{'role':'user','content':'More'}]}");
    json_t *an = J("{'model':'m','max_tokens':3,'system':'S','messages':[{'role':'user',"
                   "'content':'Hi'},{'role':'assistant','content':'Yo'},{'role':'user',"
                   "'content':'More'}]}");
    pv_request *ro, *ra;
    assert_int_equal(pv_api_openai_parse(oa, &ro, &err), PV_OK);
    assert_int_equal(pv_api_anthropic_parse(an, false, &ra, &err), PV_OK);
    assert_false(ro->has_max_tokens);
    char *po = render(ro), *pa = render(ra);
    assert_string_equal(po, pa);
    free(po);
    free(pa);
    pv_request_free(ro);
    pv_request_free(ra);
    json_decref(oa);
    json_decref(an);

    /* Invalid JSON in arguments is kept as the raw string; image parts are media. */
    json_t *b2 = J("{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
                   "'image_url':{'url':'data:x'}}]},{'role':'assistant','tool_calls':[{'id':'c',"
                   "'function':{'name':'f','arguments':'not json'}}]}]}");
    assert_int_equal(pv_api_openai_parse(b2, &r, &err), PV_OK);
    assert_true(pv_api_request_has_media(r));
    assert_int_not_equal(pv_api_request_check_text_only(r, &err), PV_OK);
    assert_string_equal(err.param, "messages[0].content[0]");
    assert_string_equal(json_string_value(r->messages[1].blocks[0].input), "not json");
    assert_true(r->prefill);
    pv_request_free(r);
    json_decref(b2);
}

/* ---- builders ---- */

/* Splits an SSE frame, checks the framing and that data's type equals the event name;
 * returns the parsed data (caller decrefs) and frees the frame. */
static json_t *sse_check(char *frame, const char *name) {
    assert_non_null(frame);
    char head[128];
    snprintf(head, sizeof head, "event: %s\ndata: ", name);
    assert_int_equal(strncmp(frame, head, strlen(head)), 0);
    size_t n = strlen(frame);
    assert_true(n > strlen(head) + 2);
    assert_string_equal(frame + n - 2, "\n\n");
    /* exactly one blank line: at the end */
    assert_true(strstr(frame, "\n\n") == frame + n - 2);
    char *data = strndup(frame + strlen(head), n - strlen(head) - 2);
    assert_null(strchr(data, '\n'));
    json_t *v = json_loads(data, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "type")), name);
    free(data);
    free(frame);
    return v;
}

typedef struct {
    char *buf;
    size_t len;
} transcript;

#define JS(o, k) json_string_value(json_object_get((o), (k)))
#define JI(o, k) json_integer_value(json_object_get((o), (k)))

static void test_anthropic_builders(void **state) {
    (void)state;
    json_t *input = J("{'file_path':'a.c'}");
    pv_api_out_block blocks[] = {
        {.type = PV_API_BLOCK_TEXT, .text = "Hello \xc3\xa9"},
        {.type = PV_API_BLOCK_TOOL_USE, .id = "toolu_1", .name = "Read", .input = input},
    };
    pv_api_response resp = {.id = "msg_abc", .model = "claude-x", .blocks = blocks, .n_blocks = 2,
                            .stop_reason = PV_API_STOP_STOP_SEQUENCE, .stop_sequence = "END",
                            .usage = {12, 34, 0, 5}};
    char *s = pv_api_anthropic_message_json(&resp);
    assert_null(strchr(s, '\n'));
    assert_null(strstr(s, ": ")); /* compact */
    json_t *m = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(m);
    assert_string_equal(JS(m, "id"), "msg_abc");
    assert_string_equal(JS(m, "type"), "message");
    assert_string_equal(JS(m, "role"), "assistant");
    assert_string_equal(JS(m, "model"), "claude-x");
    assert_string_equal(JS(m, "stop_reason"), "stop_sequence");
    assert_string_equal(JS(m, "stop_sequence"), "END");
    json_t *content = json_object_get(m, "content");
    assert_int_equal(json_array_size(content), 2);
    assert_string_equal(JS(json_array_get(content, 0), "type"), "text");
    assert_string_equal(JS(json_array_get(content, 0), "text"), "Hello \xc3\xa9");
    json_t *tu = json_array_get(content, 1);
    assert_string_equal(JS(tu, "type"), "tool_use");
    assert_string_equal(JS(tu, "id"), "toolu_1");
    assert_string_equal(JS(tu, "name"), "Read");
    assert_true(json_equal(json_object_get(tu, "input"), input));
    json_t *u = json_object_get(m, "usage");
    assert_int_equal(JI(u, "input_tokens"), 12);
    assert_int_equal(JI(u, "output_tokens"), 34);
    assert_int_equal(JI(u, "cache_creation_input_tokens"), 0);
    assert_int_equal(JI(u, "cache_read_input_tokens"), 5);
    json_decref(m);

    /* end_turn: stop_sequence is null even if a string is passed */
    resp.stop_reason = PV_API_STOP_END_TURN;
    s = pv_api_anthropic_message_json(&resp);
    m = json_loads(s, 0, NULL);
    free(s);
    assert_true(json_is_null(json_object_get(m, "stop_sequence")));
    assert_string_equal(JS(m, "stop_reason"), "end_turn");
    json_decref(m);

    pv_api_usage us = {.input_tokens = 9, .output_tokens = 1};
    json_t *v = sse_check(pv_api_anthropic_sse_message_start("msg_1", "claude-x", &us),
                          "message_start");
    json_t *msg = json_object_get(v, "message");
    assert_string_equal(JS(msg, "id"), "msg_1");
    assert_string_equal(JS(msg, "model"), "claude-x");
    assert_string_equal(JS(msg, "type"), "message");
    assert_string_equal(JS(msg, "role"), "assistant");
    assert_int_equal(json_array_size(json_object_get(msg, "content")), 0);
    assert_true(json_is_array(json_object_get(msg, "content")));
    assert_true(json_is_null(json_object_get(msg, "stop_reason")));
    assert_true(json_is_null(json_object_get(msg, "stop_sequence")));
    assert_int_equal(JI(json_object_get(msg, "usage"), "input_tokens"), 9);
    assert_int_equal(JI(json_object_get(msg, "usage"), "output_tokens"), 1);
    json_decref(v);

    v = sse_check(pv_api_anthropic_sse_block_start(0, &blocks[0]), "content_block_start");
    assert_int_equal(JI(v, "index"), 0);
    json_t *cb = json_object_get(v, "content_block");
    assert_string_equal(JS(cb, "type"), "text");
    assert_string_equal(JS(cb, "text"), ""); /* empty at start, text comes in deltas */
    json_decref(v);
    v = sse_check(pv_api_anthropic_sse_block_start(1, &blocks[1]), "content_block_start");
    cb = json_object_get(v, "content_block");
    assert_string_equal(JS(cb, "type"), "tool_use");
    assert_string_equal(JS(cb, "id"), "toolu_1");
    assert_string_equal(JS(cb, "name"), "Read");
    assert_int_equal(json_object_size(json_object_get(cb, "input")), 0);
    json_decref(v);
    pv_api_out_block th = {.type = PV_API_BLOCK_THINKING};
    v = sse_check(pv_api_anthropic_sse_block_start(2, &th), "content_block_start");
    cb = json_object_get(v, "content_block");
    assert_string_equal(JS(cb, "thinking"), "");
    assert_string_equal(JS(cb, "signature"), "");
    json_decref(v);

    /* a delta of part of a buffer (not NUL-terminated there) */
    const char *buf = "abc\"def";
    v = sse_check(pv_api_anthropic_sse_block_delta(3, PV_API_DELTA_TEXT, buf, 5),
                  "content_block_delta");
    assert_int_equal(JI(v, "index"), 3);
    assert_string_equal(JS(json_object_get(v, "delta"), "type"), "text_delta");
    assert_string_equal(JS(json_object_get(v, "delta"), "text"), "abc\"d");
    json_decref(v);
    v = sse_check(pv_api_anthropic_sse_block_delta(1, PV_API_DELTA_INPUT_JSON, "{\"a\":", 5),
                  "content_block_delta");
    assert_string_equal(JS(json_object_get(v, "delta"), "type"), "input_json_delta");
    assert_string_equal(JS(json_object_get(v, "delta"), "partial_json"), "{\"a\":");
    json_decref(v);
    /* stray bytes (half a UTF-8 character, a lone continuation byte) become U+FFFD */
    v = sse_check(pv_api_anthropic_sse_block_delta(0, PV_API_DELTA_TEXT,
                                                   "a\xc3\x80\x80" "b\xc3", 6),
                  "content_block_delta");
    assert_string_equal(JS(json_object_get(v, "delta"), "text"),
                        "a\xc3\x80\xef\xbf\xbd" "b\xef\xbf\xbd");
    json_decref(v);

    v = sse_check(pv_api_anthropic_sse_block_stop(4), "content_block_stop");
    assert_int_equal(JI(v, "index"), 4);
    json_decref(v);
    pv_api_usage fin = {.input_tokens = 9, .output_tokens = 17};
    v = sse_check(pv_api_anthropic_sse_message_delta(PV_API_STOP_STOP_SEQUENCE, "###", &fin),
                  "message_delta");
    assert_string_equal(JS(json_object_get(v, "delta"), "stop_reason"), "stop_sequence");
    assert_string_equal(JS(json_object_get(v, "delta"), "stop_sequence"), "###");
    assert_int_equal(JI(json_object_get(v, "usage"), "output_tokens"), 17);
    json_decref(v);
    v = sse_check(pv_api_anthropic_sse_message_delta(PV_API_STOP_MODEL_CONTEXT_WINDOW_EXCEEDED,
                                                     NULL, &fin),
                  "message_delta");
    assert_string_equal(JS(json_object_get(v, "delta"), "stop_reason"),
                        "model_context_window_exceeded");
    assert_true(json_is_null(json_object_get(json_object_get(v, "delta"), "stop_sequence")));
    json_decref(v);

    /* exact frames */
    s = pv_api_anthropic_sse_ping();
    assert_string_equal(s, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    free(s);
    s = pv_api_anthropic_sse_message_stop();
    assert_string_equal(s, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    free(s);
    s = pv_api_anthropic_sse_block_stop(0);
    assert_string_equal(s, "event: content_block_stop\ndata: "
                           "{\"type\":\"content_block_stop\",\"index\":0}\n\n");
    free(s);

    pv_api_error e;
    pv_api_error_set(&e, PV_API_ERR_OVERLOADED, NULL, "queue full (%d waiting)", 8);
    v = sse_check(pv_api_anthropic_sse_error(&e), "error");
    assert_string_equal(JS(json_object_get(v, "error"), "type"), "overloaded_error");
    assert_string_equal(JS(json_object_get(v, "error"), "message"), "queue full (8 waiting)");
    json_decref(v);

    s = pv_api_error_json(PV_API_ANTHROPIC, &e, "req_123");
    v = json_loads(s, 0, NULL);
    free(s);
    assert_string_equal(JS(v, "type"), "error");
    assert_string_equal(JS(v, "request_id"), "req_123");
    assert_string_equal(JS(json_object_get(v, "error"), "type"), "overloaded_error");
    json_decref(v);
    assert_int_equal(pv_api_error_http_status(PV_API_ANTHROPIC, PV_API_ERR_OVERLOADED), 529);
    assert_int_equal(pv_api_error_http_status(PV_API_OPENAI, PV_API_ERR_OVERLOADED), 503);
    assert_int_equal(pv_api_error_http_status(PV_API_ANTHROPIC, PV_API_ERR_REQUEST_TOO_LARGE), 413);
    assert_string_equal(pv_api_error_type_str(PV_API_ANTHROPIC, PV_API_ERR_REQUEST_TOO_LARGE),
                        "request_too_large");
    assert_string_equal(pv_api_error_type_str(PV_API_ANTHROPIC, PV_API_ERR_AUTHENTICATION),
                        "authentication_error");
    assert_string_equal(pv_api_error_type_str(PV_API_ANTHROPIC, PV_API_ERR_NOT_FOUND),
                        "not_found_error");
    assert_string_equal(pv_api_error_type_str(PV_API_ANTHROPIC, PV_API_ERR_API), "api_error");

    s = pv_api_anthropic_count_tokens_json(42);
    assert_string_equal(s, "{\"input_tokens\":42}");
    free(s);
    json_decref(input);
}

static void test_openai_builders(void **state) {
    (void)state;
    /* finish_reason mapping, written from the issue's table */
    static const struct {
        pv_api_stop_reason r;
        const char *anthropic, *openai;
    } map[] = {{PV_API_STOP_END_TURN, "end_turn", "stop"},
               {PV_API_STOP_MAX_TOKENS, "max_tokens", "length"},
               {PV_API_STOP_STOP_SEQUENCE, "stop_sequence", "stop"},
               {PV_API_STOP_TOOL_USE, "tool_use", "tool_calls"},
               {PV_API_STOP_MODEL_CONTEXT_WINDOW_EXCEEDED, "model_context_window_exceeded",
                "length"}};
    for (size_t i = 0; i < PV_ARRAY_LEN(map); i++) {
        assert_string_equal(pv_api_stop_reason_str(map[i].r), map[i].anthropic);
        assert_string_equal(pv_api_stop_reason_openai(map[i].r), map[i].openai);
    }

    json_t *input = J("{'q':'x'}");
    pv_api_out_block blocks[] = {
        {.type = PV_API_BLOCK_TEXT, .text = "Hi "},
        {.type = PV_API_BLOCK_TEXT, .text = "there"},
        {.type = PV_API_BLOCK_TOOL_USE, .id = "call_1", .name = "search", .input = input},
    };
    pv_api_response resp = {.id = "chatcmpl-1", .model = "gpt-x", .blocks = blocks,
                            .n_blocks = 3, .stop_reason = PV_API_STOP_TOOL_USE,
                            .usage = {10, 4, 0, 2}, .created = 1700000000};
    char *s = pv_api_openai_completion_json(&resp);
    json_t *v = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(v);
    assert_string_equal(JS(v, "object"), "chat.completion");
    assert_string_equal(JS(v, "id"), "chatcmpl-1");
    assert_string_equal(JS(v, "model"), "gpt-x");
    assert_int_equal(JI(v, "created"), 1700000000);
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_int_equal(JI(ch, "index"), 0);
    assert_string_equal(JS(ch, "finish_reason"), "tool_calls");
    json_t *msg = json_object_get(ch, "message");
    assert_string_equal(JS(msg, "role"), "assistant");
    assert_string_equal(JS(msg, "content"), "Hi there");
    json_t *tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    assert_string_equal(JS(tc, "id"), "call_1");
    assert_string_equal(JS(tc, "type"), "function");
    assert_string_equal(JS(json_object_get(tc, "function"), "name"), "search");
    json_t *args = json_loads(JS(json_object_get(tc, "function"), "arguments"), 0, NULL);
    assert_true(json_equal(args, input));
    json_decref(args);
    json_t *u = json_object_get(v, "usage");
    assert_int_equal(JI(u, "prompt_tokens"), 12); /* input + cache read */
    assert_int_equal(JI(u, "completion_tokens"), 4);
    assert_int_equal(JI(u, "total_tokens"), 16);
    json_decref(v);

    pv_api_openai_chunk c = {.id = "chatcmpl-1", .model = "gpt-x", .created = 5, .role = true,
                             .content = "hello!", .content_len = 4, .usage_null = true};
    s = pv_api_openai_sse_chunk(&c);
    assert_int_equal(strncmp(s, "data: {", 7), 0);
    size_t n = strlen(s);
    assert_string_equal(s + n - 2, "\n\n");
    assert_true(strchr(s, '\n') == s + n - 2); /* one line, then the blank line */
    v = json_loadb(s + 6, n - 8, 0, NULL);
    free(s);
    assert_non_null(v);
    assert_string_equal(JS(v, "object"), "chat.completion.chunk");
    ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(JS(json_object_get(ch, "delta"), "role"), "assistant");
    assert_string_equal(JS(json_object_get(ch, "delta"), "content"), "hell");
    assert_true(json_is_null(json_object_get(ch, "finish_reason")));
    assert_true(json_is_null(json_object_get(v, "usage")));
    assert_non_null(json_object_get(v, "usage"));
    json_decref(v);

    pv_api_openai_chunk fin = {.id = "chatcmpl-1", .model = "gpt-x", .finished = true,
                               .finish = PV_API_STOP_MAX_TOKENS};
    s = pv_api_openai_sse_chunk(&fin);
    v = json_loadb(s + 6, strlen(s) - 8, 0, NULL);
    free(s);
    ch = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(JS(ch, "finish_reason"), "length");
    assert_int_equal(json_object_size(json_object_get(ch, "delta")), 0);
    assert_null(json_object_get(v, "usage"));
    json_decref(v);

    pv_api_usage us = {.input_tokens = 3, .output_tokens = 2};
    pv_api_openai_chunk uc = {.id = "chatcmpl-1", .model = "gpt-x", .usage_chunk = true,
                              .usage = &us};
    s = pv_api_openai_sse_chunk(&uc);
    v = json_loadb(s + 6, strlen(s) - 8, 0, NULL);
    free(s);
    assert_int_equal(json_array_size(json_object_get(v, "choices")), 0);
    assert_int_equal(JI(json_object_get(v, "usage"), "total_tokens"), 5);
    json_decref(v);

    pv_api_openai_chunk tcc = {.id = "x", .model = "m", .tool_call = &blocks[2],
                               .tool_call_index = 0};
    s = pv_api_openai_sse_chunk(&tcc);
    v = json_loadb(s + 6, strlen(s) - 8, 0, NULL);
    free(s);
    ch = json_array_get(json_object_get(v, "choices"), 0);
    tc = json_array_get(json_object_get(json_object_get(ch, "delta"), "tool_calls"), 0);
    assert_int_equal(JI(tc, "index"), 0);
    assert_string_equal(JS(json_object_get(tc, "function"), "arguments"), "{\"q\":\"x\"}");
    json_decref(v);

    assert_string_equal(pv_api_openai_sse_done(), "data: [DONE]\n\n");
    json_decref(input);
}

static void test_wiring(void **state) {
    (void)state;
    pv_api_error e;
    /* budget: n_ctx 100 */
    pv_request *r = parse_ok("{'model':'m','max_tokens':10," USER_HI "}", false);
    int64_t max_new;
    bool clamped;
    assert_int_equal(pv_api_plan_tokens(r, 50, 100, &max_new, &clamped, &e), PV_OK);
    assert_int_equal(max_new, 10);
    assert_false(clamped);
    assert_int_equal(pv_api_plan_tokens(r, 95, 100, &max_new, &clamped, &e), PV_OK);
    assert_int_equal(max_new, 5);
    assert_true(clamped);
    assert_int_equal(pv_api_plan_tokens(r, 99, 100, &max_new, &clamped, &e), PV_OK);
    assert_int_equal(max_new, 1);
    assert_int_not_equal(pv_api_plan_tokens(r, 100, 100, &max_new, &clamped, &e), PV_OK);
    assert_string_equal(e.message, "prompt is too long: 100 tokens > 99 maximum");
    assert_int_equal(pv_api_error_http_status(PV_API_ANTHROPIC, e.kind), 400);
    assert_int_not_equal(pv_api_plan_tokens(r, 9000, 8192, &max_new, &clamped, &e), PV_OK);
    assert_string_equal(e.message, "prompt is too long: 9000 tokens > 8191 maximum");
    pv_request_free(r);
    r = parse_ok("{'model':'m','max_tokens':0," USER_HI "}", false);
    assert_int_equal(pv_api_plan_tokens(r, 60, 100, &max_new, &clamped, &e), PV_OK);
    assert_int_equal(max_new, 0);
    assert_false(clamped);
    assert_int_not_equal(pv_api_plan_tokens(r, 100, 100, &max_new, &clamped, &e), PV_OK);
    pv_request_free(r);

    /* sampler settings: API defaults when absent, the values when given */
    r = parse_ok("{'model':'m','max_tokens':1," USER_HI "}", false);
    pv_sampler_params p = pv_api_sampler_params(r, 77);
    assert_true(p.temperature == 1.0f && p.top_k == 0 && p.top_p == 1.0f && p.min_p == 0.0f);
    assert_true(p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f);
    assert_true(p.seed == 77);
    pv_request_free(r);
    r = parse_ok("{'model':'m','max_tokens':1,'temperature':0,'top_k':5,'top_p':0.5," USER_HI "}",
                 false);
    p = pv_api_sampler_params(r, 77);
    assert_true(p.temperature == 0.0f && p.top_k == 5 && p.top_p == 0.5f);
    pv_request_free(r);
    json_t *ob = J("{'model':'m','seed':9,'frequency_penalty':0.5," OA_HI "}");
    assert_int_equal(pv_api_openai_parse(ob, &r, &e), PV_OK);
    p = pv_api_sampler_params(r, 77);
    assert_true(p.seed == 9 && p.frequency_penalty == 0.5f);
    pv_request_free(r);
    json_decref(ob);
}

/* Walks v depth-first; the target-th child value (counting from 0) is replaced by `with`
 * (a new reference is taken) or removed when `with` is NULL. Returns true once done. */
static bool mutate_nth(json_t *v, int *counter, int target, json_t *with) {
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, child) {
            if ((*counter)++ == target) {
                if (with) json_object_set(v, k, with);
                else json_object_del(v, k);
                return true;
            }
            if (mutate_nth(child, counter, target, with)) return true;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((*counter)++ == target) {
                if (with) json_array_set(v, i, with);
                else json_array_remove(v, i);
                return true;
            }
            if (mutate_nth(json_array_get(v, i), counter, target, with)) return true;
        }
    }
    return false;
}

/* Every value of a good body replaced by each wrong-typed value, or removed: the parsers
 * must answer OK or a 400 with a message (never crash, never leak: run under ASan). */
static void test_mutations(void **state) {
    (void)state;
    const char *oa_body =
        "{'model':'m','messages':[{'role':'system','content':'S'},{'role':'user','content':"
        "[{'type':'text','text':'a'},{'type':'image_url','image_url':{'url':'u'}}]},"
        "{'role':'assistant','content':null,'tool_calls':[{'id':'c','type':'function',"
        "'function':{'name':'f','arguments':'{}'}}]},{'role':'tool','tool_call_id':'c',"
        "'content':[{'type':'text','text':'r'}]}],'stop':['x'],'stream_options':"
        "{'include_usage':true},'tools':[{'type':'function','function':{'name':'f',"
        "'parameters':{'type':'object'}}}],'tool_choice':{'type':'function','function':"
        "{'name':'f'}},'response_format':{'type':'json_object'}}";
    const char *an_extra =
        "{'model':'m','max_tokens':5,'system':[{'type':'text','text':'s'}],'messages':["
        "{'role':'user','content':[{'type':'image','source':{'type':'base64','media_type':'x',"
        "'data':'y'}},{'type':'document','source':{'type':'text','data':'d'}}]},"
        "{'role':'assistant','content':[{'type':'thinking','thinking':'t','signature':'s'},"
        "{'type':'redacted_thinking','data':'d'},{'type':'tool_use','id':'i','name':'Bash',"
        "'input':{}}]},{'role':'user','content':[{'type':'tool_result','tool_use_id':'i',"
        "'is_error':false,'content':[{'type':'text','text':'o'}]}]}],'tools':[{'name':'Bash',"
        "'input_schema':{'type':'object'}}],'tool_choice':{'type':'tool','name':'Bash'},"
        "'thinking':{'type':'enabled','budget_tokens':1024},'stop_sequences':['z'],"
        "'top_k':3,'top_p':0.5,'temperature':0.2,'metadata':{'user_id':'u'}}";
    const char *bodies[] = {claude_code_body, an_extra, oa_body};
    const char *wrong[] = {"null", "5", "'x'", "[]", "{}", "true", "1.5", "-1", "''",
                           "[{}]", "[5]", "{'type':5}"};
    int runs = 0, accepted = 0;
    for (size_t b = 0; b < PV_ARRAY_LEN(bodies); b++) {
        bool openai = b == 2;
        json_t *orig = J(bodies[b]);
        for (int target = 0;; target++) {
            bool any = false;
            for (size_t w = 0; w <= PV_ARRAY_LEN(wrong); w++) {
                json_t *copy = json_deep_copy(orig);
                json_t *with = w < PV_ARRAY_LEN(wrong) ? J(wrong[w]) : NULL;
                int counter = 0;
                bool done = mutate_nth(copy, &counter, target, with);
                json_decref(with);
                if (done) {
                    any = true;
                    pv_request *r = NULL;
                    pv_api_error err;
                    memset(&err, 0, sizeof err);
                    pv_status st = openai ? pv_api_openai_parse(copy, &r, &err)
                                          : pv_api_anthropic_parse(copy, false, &r, &err);
                    runs++;
                    if (st == PV_OK) {
                        accepted++;
                        /* an accepted body renders, or is refused as a 400 (e.g. an
                         * empty prefill the template cannot continue) — never worse */
                        char *text = NULL;
                        size_t len;
                        pv_api_error re;
                        pv_status rs = pv_api_chat_render(g_fallback, r, &text, &len, &re);
                        if (rs != PV_OK) assert_int_equal(re.kind, PV_API_ERR_INVALID_REQUEST);
                        free(text);
                        pv_request_free(r);
                    } else {
                        assert_null(r);
                        assert_true(strlen(err.message) > 0);
                        assert_int_equal(err.kind, PV_API_ERR_INVALID_REQUEST);
                    }
                }
                json_decref(copy);
            }
            if (!any) break;
        }
        json_decref(orig);
    }
    /* both outcomes happen (wrong types rejected, tolerated fields accepted) */
    assert_true(runs > 1000);
    assert_true(accepted > 0 && accepted < runs);
}

/* Appends a call's output to the transcript and frees it. */
static void take(transcript *sb, char *s) {
    assert_non_null(s);
    size_t n = strlen(s);
    sb->buf = realloc(sb->buf, sb->len + n + 1);
    memcpy(sb->buf + sb->len, s, n + 1);
    sb->len += n;
    free(s);
}

/* Splits an SSE transcript into frames ("\n\n"-terminated) and checks each: Anthropic frames
 * are "event: NAME\ndata: JSON" with type == NAME; writes "NAME" (or "[DONE]", ":comment",
 * "chunk") per frame into names, and the parsed JSON into datas (NULL for non-JSON). */
static size_t split_sse(const char *t, char names[][32], json_t **datas, size_t cap) {
    size_t n = 0;
    while (*t) {
        const char *end = strstr(t, "\n\n");
        assert_non_null(end);
        assert_true(n < cap);
        char *frame = strndup(t, (size_t)(end - t));
        datas[n] = NULL;
        if (frame[0] == ':') {
            snprintf(names[n], 32, ":comment");
        } else if (strncmp(frame, "event: ", 7) == 0) {
            char *nl = strchr(frame, '\n');
            assert_non_null(nl);
            *nl = '\0';
            snprintf(names[n], 32, "%s", frame + 7);
            assert_int_equal(strncmp(nl + 1, "data: ", 6), 0);
            datas[n] = json_loads(nl + 7, 0, NULL);
            assert_non_null(datas[n]);
            assert_string_equal(JS(datas[n], "type"), names[n]);
        } else {
            assert_int_equal(strncmp(frame, "data: ", 6), 0);
            if (strcmp(frame + 6, "[DONE]") == 0) {
                snprintf(names[n], 32, "[DONE]");
            } else {
                datas[n] = json_loads(frame + 6, 0, NULL);
                assert_non_null(datas[n]);
                snprintf(names[n], 32, "%s",
                         json_object_get(datas[n], "error") ? "error" : "chunk");
            }
        }
        free(frame);
        n++;
        t = end + 2;
    }
    return n;
}

static void test_stream_assembler(void **state) {
    (void)state;
    char names[32][32];
    json_t *d[32];
    transcript sb = {0};
    pv_api_usage u0 = {.input_tokens = 7, .output_tokens = 1};
    pv_api_usage u1 = {.input_tokens = 7, .output_tokens = 3};
    pv_api_stream *s = pv_api_stream_new(PV_API_ANTHROPIC, "msg_1", "claude-x", 0, false);
    take(&sb, pv_api_stream_begin(s, &u0));
    take(&sb, pv_api_stream_begin(s, &u0)); /* a second begin sends nothing */
    take(&sb, pv_api_stream_ping(s));
    take(&sb, pv_api_stream_text(s, "Hel", 3));
    take(&sb, pv_api_stream_text(s, "", 0));
    take(&sb, pv_api_stream_text(s, "lo!", 2));
    assert_false(pv_api_stream_done(s));
    take(&sb, pv_api_stream_end(s, PV_API_STOP_STOP_SEQUENCE, "END", &u1));
    assert_true(pv_api_stream_done(s));
    take(&sb, pv_api_stream_text(s, "late", 4)); /* nothing after the end */
    take(&sb, pv_api_stream_ping(s));
    static const char *const want[] = {"message_start", "ping", "ping", "content_block_start",
                                       "content_block_delta", "content_block_delta",
                                       "content_block_stop", "message_delta", "message_stop"};
    size_t n = split_sse(sb.buf, names, d, 32);
    assert_int_equal(n, PV_ARRAY_LEN(want));
    for (size_t i = 0; i < n; i++) assert_string_equal(names[i], want[i]);
    assert_int_equal(JI(json_object_get(json_object_get(d[0], "message"), "usage"),
                        "input_tokens"), 7);
    assert_int_equal(JI(d[3], "index"), 0);
    assert_string_equal(JS(json_object_get(d[4], "delta"), "text"), "Hel");
    assert_string_equal(JS(json_object_get(d[5], "delta"), "text"), "lo");
    assert_int_equal(JI(d[6], "index"), 0);
    assert_string_equal(JS(json_object_get(d[7], "delta"), "stop_sequence"), "END");
    assert_int_equal(JI(json_object_get(d[7], "usage"), "output_tokens"), 3);
    for (size_t i = 0; i < n; i++) json_decref(d[i]);
    pv_api_stream_free(s);
    free(sb.buf);

    /* an error mid-stream ends it: no block stop, no message_stop */
    sb = (transcript){0};
    s = pv_api_stream_new(PV_API_ANTHROPIC, "msg_2", "m", 0, false);
    take(&sb, pv_api_stream_begin(s, &u0));
    take(&sb, pv_api_stream_text(s, "a", 1));
    pv_api_error e;
    pv_api_error_set(&e, PV_API_ERR_OVERLOADED, NULL, "out of KV memory");
    take(&sb, pv_api_stream_error(s, &e));
    take(&sb, pv_api_stream_end(s, PV_API_STOP_END_TURN, NULL, &u1));
    n = split_sse(sb.buf, names, d, 32);
    static const char *const want_err[] = {"message_start", "ping", "content_block_start",
                                           "content_block_delta", "error"};
    assert_int_equal(n, PV_ARRAY_LEN(want_err));
    for (size_t i = 0; i < n; i++) assert_string_equal(names[i], want_err[i]);
    assert_string_equal(JS(json_object_get(d[4], "error"), "type"), "overloaded_error");
    for (size_t i = 0; i < n; i++) json_decref(d[i]);
    pv_api_stream_free(s);
    free(sb.buf);

    /* OpenAI with include_usage */
    sb = (transcript){0};
    s = pv_api_stream_new(PV_API_OPENAI, "chatcmpl-1", "gpt-x", 99, true);
    take(&sb, pv_api_stream_begin(s, NULL));
    take(&sb, pv_api_stream_ping(s));
    take(&sb, pv_api_stream_text(s, "hi", 2));
    take(&sb, pv_api_stream_end(s, PV_API_STOP_MAX_TOKENS, NULL, &u1));
    n = split_sse(sb.buf, names, d, 32);
    static const char *const want_oa[] = {"chunk", ":comment", "chunk", "chunk", "chunk",
                                          "[DONE]"};
    assert_int_equal(n, PV_ARRAY_LEN(want_oa));
    for (size_t i = 0; i < n; i++) assert_string_equal(names[i], want_oa[i]);
    json_t *c0 = json_array_get(json_object_get(d[0], "choices"), 0);
    assert_string_equal(JS(json_object_get(c0, "delta"), "role"), "assistant");
    json_t *c2 = json_array_get(json_object_get(d[2], "choices"), 0);
    assert_string_equal(JS(json_object_get(c2, "delta"), "content"), "hi");
    assert_true(json_is_null(json_object_get(d[2], "usage")));
    json_t *c3 = json_array_get(json_object_get(d[3], "choices"), 0);
    assert_string_equal(JS(c3, "finish_reason"), "length");
    assert_int_equal(json_array_size(json_object_get(d[4], "choices")), 0);
    assert_int_equal(JI(json_object_get(d[4], "usage"), "completion_tokens"), 3);
    for (size_t i = 0; i < n; i++) {
        if (d[i]) assert_string_equal(JS(d[i], "id"), "chatcmpl-1");
        json_decref(d[i]);
    }
    pv_api_stream_free(s);
    free(sb.buf);

    /* OpenAI without include_usage: no usage chunk, no usage keys; error frame */
    sb = (transcript){0};
    s = pv_api_stream_new(PV_API_OPENAI, "c", "m", 0, false);
    take(&sb, pv_api_stream_text(s, "x", 1)); /* begins implicitly */
    take(&sb, pv_api_stream_error(s, &e));
    n = split_sse(sb.buf, names, d, 32);
    assert_int_equal(n, 3);
    assert_string_equal(names[2], "error");
    assert_null(json_object_get(d[1], "usage"));
    assert_string_equal(JS(json_object_get(d[2], "error"), "type"), "server_error");
    for (size_t i = 0; i < n; i++) json_decref(d[i]);
    pv_api_stream_free(s);
    free(sb.buf);
}

static void test_ids(void **state) {
    (void)state;
    char a[64], b[64];
    pv_api_new_id("msg_", a, sizeof a);
    pv_api_new_id("msg_", b, sizeof b);
    assert_int_equal(strlen(a), 4 + 24);
    assert_int_equal(strncmp(a, "msg_", 4), 0);
    for (const char *p = a + 4; *p; p++)
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= 'A' && *p <= 'Z'));
    assert_string_not_equal(a, b);
    char small[8];
    pv_api_new_id("req_", small, sizeof small);
    assert_int_equal(strlen(small), 7);
}

/* ---- count_tokens on real vocabularies ---- */
static pv_tokenizer *load_tok(const char *path, pv_weights **w) {
    pv_error err;
    pv_tokenizer *t = NULL;
    if (pv_weights_open(path, w, &err) != PV_OK) fail_msg("open %s: %s", path, err.msg);
    if (pv_tokenizer_init(*w, &t, &err) != PV_OK) fail_msg("tokenizer %s: %s", path, err.msg);
    return t;
}

static void test_count_tokens_stories(void **state) {
    (void)state;
    pv_tokenizer *tok = g_stories_tok;
    const char *bodies[] = {
        claude_code_body,
        "{'model':'m','max_tokens':5,'system':'Tell stories.','messages':[{'role':'user',"
        "'content':'Once upon a time'},{'role':'assistant','content':'there was a cat'}]}",
    };
    for (size_t i = 0; i < PV_ARRAY_LEN(bodies); i++) {
        pv_request *r = parse_ok(bodies[i], false);
        char *text = render(r);
        int32_t *ids;
        size_t n_ids;
        pv_error err;
        /* the rendering, encoded with the model's own BOS rule and special tokens parsed */
        assert_int_equal(pv_tokenizer_encode(tok, text, strlen(text), true, true, &ids, &n_ids,
                                             &err),
                         PV_OK);
        int n = -1;
        pv_api_error e;
        assert_int_equal(pv_api_count_tokens(r, g_fallback, tok, &n, &e), PV_OK);
        assert_int_equal(n, (int)n_ids);
        assert_true(n > 10);
        /* stories260K adds BOS (id 1 per the manifest), exactly once */
        int32_t *ids2;
        size_t n2;
        assert_int_equal(pv_api_prompt_tokens(r, g_fallback, tok, &ids2, &n2, &e), PV_OK);
        assert_int_equal(n2, n_ids);
        assert_memory_equal(ids, ids2, n2 * sizeof *ids);
        assert_int_equal(ids2[0], 1);
        assert_int_not_equal(ids2[1], 1);
        /* the decoded prompt is the rendered text */
        char *dec = pv_tokenizer_decode(tok, ids2 + 1, n2 - 1, false);
        assert_string_equal(dec, text);
        free(dec);
        free(ids);
        free(ids2);
        free(text);
        pv_request_free(r);
    }
    /* count_tokens route: no max_tokens, same count as the full body */
    pv_request *a = parse_ok("{'model':'m','messages':[{'role':'user','content':'hi'}]}", true);
    pv_request *b = parse_ok("{'model':'m','max_tokens':9,'messages':[{'role':'user','content':"
                             "'hi'}]}",
                             false);
    int na, nb;
    pv_api_error e;
    assert_int_equal(pv_api_count_tokens(a, g_fallback, tok, &na, &e), PV_OK);
    assert_int_equal(pv_api_count_tokens(b, g_fallback, tok, &nb, &e), PV_OK);
    assert_int_equal(na, nb);
    pv_request_free(a);
    pv_request_free(b);
}

/* A model with its own template (the qwen3 fixture's): its ChatML markers are single
 * tokens, a raised template error is a 400 with the template's message. */
static void test_count_tokens_model_template(void **state) {
    (void)state;
    char *path = pv_test_fixture_path("qwen3/qwen3-f32.gguf");
    if (!path) skip();
    pv_weights *w;
    pv_tokenizer *tok = load_tok(path, &w);
    free(path);
    char *src = pv_meta_get_strdup(w, "tokenizer.chat_template");
    assert_non_null(src);
    pv_api_chat *chat;
    pv_error err;
    assert_int_equal(pv_api_chat_init(src, tok, &chat, &err), PV_OK);
    assert_false(pv_api_chat_is_fallback(chat));
    assert_int_equal(pv_api_chat_toolcall_format(chat), PV_TOOLCALL_HERMES);
    free(src);
    int32_t im_start = pv_tokenizer_find(tok, "<|im_start|>", 12);
    int32_t im_end = pv_tokenizer_find(tok, "<|im_end|>", 10);
    assert_true(im_start >= 0 && im_end >= 0);
    pv_request *r = parse_ok("{'model':'m','max_tokens':5,'system':'S','messages':[{'role':"
                             "'user','content':'Hi'}]}",
                             false);
    int32_t *ids;
    size_t n;
    pv_api_error e;
    assert_int_equal(pv_api_prompt_tokens(r, chat, tok, &ids, &n, &e), PV_OK);
    /* three turns opened (system, user, assistant) and two closed, as single tokens */
    int opens = 0, closes = 0;
    for (size_t i = 0; i < n; i++) {
        opens += ids[i] == im_start;
        closes += ids[i] == im_end;
    }
    assert_int_equal(opens, 3);
    assert_int_equal(closes, 2);
    int cnt;
    assert_int_equal(pv_api_count_tokens(r, chat, tok, &cnt, &e), PV_OK);
    assert_int_equal(cnt, (int)n);
    free(ids);
    pv_request_free(r);
    pv_api_chat_free(chat);

    /* raise_exception → 400 carrying the template's own message */
    const char *strict = "{% if messages|length > 1 %}{{ raise_exception('Only one message is "
                         "supported') }}{% endif %}{{ messages[0].content }}";
    assert_int_equal(pv_api_chat_init(strict, tok, &chat, &err), PV_OK);
    r = parse_ok("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'Hi'},"
                 "{'role':'assistant','content':'Yo'},{'role':'user','content':'Again'}]}",
                 false);
    assert_int_equal(pv_api_prompt_tokens(r, chat, tok, &ids, &n, &e), PV_ERR_INVALID);
    assert_int_equal(e.kind, PV_API_ERR_INVALID_REQUEST);
    assert_string_equal(e.message, "Only one message is supported");
    pv_request_free(r);
    pv_api_chat_free(chat);
    /* a template that does not parse fails at load, with its position */
    assert_int_not_equal(pv_api_chat_init("{% if %}", tok, &chat, &err), PV_OK);
    assert_non_null(strstr(err.msg, "line 1"));
    pv_tokenizer_free(tok);
    pv_weights_free(w);
}

/* A template blind to system messages, tools, tool calls and tool results (Phi-3's of April
 * 2024): all four are written into the messages it does render. Expected context by hand. */
static void test_template_polyfill(void **state) {
    (void)state;
    const char *phi3 =
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}"
        "{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}"
        "{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\\n'}}"
        "{% endif %}{% endfor %}";
    pv_api_chat *chat;
    pv_error err;
    assert_int_equal(pv_api_chat_init(phi3, g_stories_tok, &chat, &err), PV_OK);
    assert_int_equal(pv_api_chat_toolcall_format(chat), PV_TOOLCALL_JSON);
    pv_request *r = parse_ok(
        "{'model':'m','max_tokens':5,'system':'Be brief.','messages':[{'role':'user','content':'a'},"
        "{'role':'assistant','content':[{'type':'text','text':'Sure.'},{'type':'tool_use','id':'t1',"
        "'name':'Read','input':{'p':'x'}}]},{'role':'user','content':[{'type':'tool_result',"
        "'tool_use_id':'t1','content':'data'},{'type':'text','text':'thanks'}]}],"
        "'tools':[{'name':'Read','input_schema':{'type':'object'}}]}",
        false);
    json_t *ctx = pv_api_chat_context(chat, r);
    json_t *want = J(
        "{'messages':[{'role':'user','content':'Be brief.\\n\\n# Tools\\n\\nYou may call one of the "
        "tools below. To call a tool, reply with only this, nothing before it:\\n{\\'name\\': "
        "\\'TOOL_NAME\\', \\'arguments\\': {}}\\nwith the name of the tool and a JSON object of its "
        "arguments.\\n\\nTools (JSON):\\n{\\'name\\': \\'Read\\', \\'parameters\\': {\\'type\\': "
        "\\'object\\'}}\\n\\na'},"
        "{'role':'assistant','content':'Sure.\\n{\\'name\\': \\'Read\\', \\'arguments\\': "
        "{\\'p\\': \\'x\\'}}'},"
        "{'role':'user','content':'<tool_response name=\\'Read\\'>\\ndata\\n</tool_response>\\n"
        "thanks'}],"
        "'tools':[{'type':'function','function':{'name':'Read','parameters':{'type':'object'}}}],"
        "'add_generation_prompt':true,'bos_token':'<s>','eos_token':'</s>','enable_thinking':false}");
    if (!json_equal(ctx, want)) {
        char *a = json_dumps(ctx, JSON_INDENT(1)), *b = json_dumps(want, JSON_INDENT(1));
        fail_msg("context\n%s\n!= expected\n%s", a, b);
    }
    json_decref(ctx);
    json_decref(want);
    pv_request_free(r);
    pv_api_chat_free(chat);
}

/* Constrained decoding refuses what it cannot enforce with a 400 naming the tool or field,
 * and builds no grammar when nothing is demanded. */
static void test_constraint_errors(void **state) {
    (void)state;
    pv_request *r = parse_ok("{'model':'m','max_tokens':5," USER_HI ",'tool_choice':{'type':'any'},"
                             "'tools':[{'name':'T','input_schema':{'allOf':[{'type':'object'},"
                             "{'type':'object'}]}}]}",
                             false);
    char *g = NULL;
    pv_api_error e;
    assert_int_equal(pv_api_constraint_gbnf(g_fallback, r, &g, &e), PV_ERR_INVALID);
    assert_null(g);
    assert_int_equal(e.kind, PV_API_ERR_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "tool \"T\": input_schema cannot be enforced"));
    pv_request_free(r);
    /* tool_choice auto: no grammar */
    r = parse_ok("{'model':'m','max_tokens':5," USER_HI ",'tools':[{'name':'T','input_schema':"
                 "{'type':'object'}}]}",
                 false);
    assert_int_equal(pv_api_constraint_gbnf(g_fallback, r, &g, &e), PV_OK);
    assert_null(g);
    pv_request_free(r);
    /* OpenAI response_format of an unknown type */
    json_t *body = J("{'model':'m','messages':[{'role':'user','content':'x'}],"
                     "'response_format':{'type':'xml'}}");
    pv_api_error pe;
    if (pv_api_openai_parse(body, &r, &pe) == PV_OK) {
        assert_int_equal(pv_api_constraint_gbnf(g_fallback, r, &g, &e), PV_ERR_INVALID);
        assert_string_equal(e.param, "response_format.type");
        pv_request_free(r);
    } else {
        assert_non_null(strstr(pe.message, "response_format"));
    }
    json_decref(body);
}

int main(void) {
    char *p = pv_test_data_path("models/stories260K.gguf");
    pv_test_require(p, "stories260K.gguf");
    free(p);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_bad_bodies),
        cmocka_unit_test(test_openai_bad_bodies),
        cmocka_unit_test(test_anthropic_contract_body),
        cmocka_unit_test(test_merge_prefill_tools),
        cmocka_unit_test(test_claude_code_body),
        cmocka_unit_test(test_media_rejected_text_only),
        cmocka_unit_test(test_openai_good),
        cmocka_unit_test(test_anthropic_builders),
        cmocka_unit_test(test_openai_builders),
        cmocka_unit_test(test_wiring),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_stream_assembler),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_count_tokens_stories),
        cmocka_unit_test(test_count_tokens_model_template),
        cmocka_unit_test(test_template_polyfill),
        cmocka_unit_test(test_constraint_errors),
    };
    return cmocka_run_group_tests(tests, setup_chat, teardown_chat);
}
