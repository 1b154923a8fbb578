-- A key's lifetime spend and last use, as LiteLLM keeps them: "spend" goes back to 0 when the
-- key's budget resets, "total_spend" never does. Adding a nullable column or one with a
-- constant default only changes the catalog; the lock wait is bounded so that a long
-- transaction on the keys table fails this start-up instead of holding back writes behind it.
SET LOCAL lock_timeout = '5s';
ALTER TABLE "LiteLLM_VerificationToken" ADD COLUMN IF NOT EXISTS "total_spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0;
ALTER TABLE "LiteLLM_VerificationToken" ADD COLUMN IF NOT EXISTS "last_active" TIMESTAMP(3);
