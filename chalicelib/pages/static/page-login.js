// The login page: the local stage's login opens a session (the HttpOnly cookie), then goes on.
import { $, api, ctx, href, onSubmit } from "./dashboard.js";

onSubmit($("#local-login"), async (values) => {
  await api("POST", "/v1/auth/local-session", { login: values.login || "" });
  const next = ctx.next && ctx.next.startsWith("/") && !ctx.next.startsWith("//") ? ctx.next : "/";
  location.assign(href(next));
});
